"""Which Kafka topics the lander reads: one per captured table, one per domain-event aggregate
(``Settings.event_aggregates``), plus the transaction and notification topics.

The naming rule itself is the lake contract's (``pipelines.contract``). Heartbeat topics are
never read: they are not tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.config import Settings
from pipelines.contract import event_topic, notification_topic, topic_for, transaction_topic
from pipelines.naming import QualifiedName

__all__ = [
    "bronze_topic",
    "event_topics",
    "lander_topics",
    "notification_topic",
    "topic_for",
    "transaction_topic",
]


def event_topics(settings: Settings) -> list[str]:
    """The domain-event topics of ``Settings.event_aggregates``."""
    return [event_topic(settings, a) for a in settings.event_aggregates]


def bronze_topic(settings: Settings, table: QualifiedName) -> str:
    """The topic a bronze table is landed from: an event table's (``_events/<aggregate>``) is
    its aggregate's event topic, any other's its CDC topic."""
    from pipelines.decode.events import EVENTS_SCHEMA

    if table.schema == EVENTS_SCHEMA:
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
