"""Which Kafka topics the lander reads: one per captured table, one per domain-event aggregate
(``Settings.event_aggregates``), plus the transaction and notification topics.

The stack owns the real rule (``pipelines.stack.connector_config.topic_for``); until it exists, use Debezium's
documented default, ``<prefix>.<schema>.<table>`` with characters outside ``[A-Za-z0-9._-]``
replaced by ``_``.  Heartbeat topics are never read: they are not tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipelines.config import Settings
from pipelines.naming import QualifiedName

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def topic_for(settings: Settings, table: QualifiedName) -> str:
    """The CDC topic of ``table``."""
    try:
        from pipelines.stack.connector_config import topic_for as stack_topic_for
    except ImportError:
        return _UNSAFE.sub("_", f"{settings.topic_prefix}.{table.schema}.{table.table}")
    return stack_topic_for(settings, table)


def transaction_topic(settings: Settings) -> str:
    """Debezium's transaction-metadata topic (``<prefix>.transaction``)."""
    try:
        from pipelines.stack.connector_config import transaction_topic as stack_tx_topic
    except ImportError:
        return _UNSAFE.sub("_", f"{settings.topic_prefix}.transaction")
    return stack_tx_topic(settings)


def notification_topic(settings: Settings) -> str:
    """Debezium's notification topic (``<prefix>.notifications``: snapshot progress)."""
    try:
        from pipelines.stack.connector_config import notification_topic as stack_note_topic
    except ImportError:
        return _UNSAFE.sub("_", f"{settings.topic_prefix}.notifications")
    return stack_note_topic(settings)


def event_topics(settings: Settings) -> list[str]:
    """The domain-event topics of ``Settings.event_aggregates`` (the stack's rule)."""
    from pipelines.stack.connector_config import event_topic

    return [event_topic(settings, a) for a in settings.event_aggregates]


def bronze_topic(settings: Settings, table: QualifiedName) -> str:
    """The topic a bronze table is landed from: an event table's (``_events/<aggregate>``) is
    its aggregate's event topic, any other's its CDC topic."""
    from pipelines.decode.events import EVENTS_SCHEMA

    if table.schema == EVENTS_SCHEMA:
        from pipelines.stack.connector_config import event_topic

        return event_topic(settings, table.table)
    return topic_for(settings, table)


def lander_topics(settings: Settings, tables: Sequence[QualifiedName] | None = None) -> list[str]:
    """CDC topics of ``tables`` (default: every captured table), the domain-event topics, and
    the transaction and notification topics. Outbox tables are never landed as tables: the
    Outbox Event Router sends their rows to the event topics."""
    chosen = settings.captured if tables is None else tuple(tables)
    topics = sorted({topic_for(settings, t) for t in chosen if t not in settings.outboxes})
    topics += sorted(set(event_topics(settings)) - set(topics))
    return [*topics, transaction_topic(settings), notification_topic(settings)]
