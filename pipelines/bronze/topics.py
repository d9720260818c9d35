"""Which Kafka topics the lander reads: one per captured table, one per domain-event aggregate
(``Settings.event_aggregates``), plus the transaction and notification topics.

The naming rule itself is the lake contract's (``pipelines.contract``). Heartbeat topics are
never read: they are not tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.contract import event_topic, notification_topic, topic_for, transaction_topic
from pipelines.naming import QualifiedName

if TYPE_CHECKING:
    from pipelines.bronze.reader import BronzeTable

__all__ = [
    "bronze_topic",
    "home_tables",
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


def home_tables(
    settings: Settings, tables: Sequence[QualifiedName] | None = None
) -> dict[str, BronzeTable]:
    """Each of ``lander_topics``' topics -> the bronze table it carries (its *home*: where a
    store that keeps positions per table records how far the topic has landed)."""
    from pipelines.bronze.layout import NOTIFICATIONS, TRANSACTIONS
    from pipelines.decode.events import EVENTS_SCHEMA

    chosen = settings.captured if tables is None else tuple(tables)
    out: dict[str, BronzeTable] = {
        topic_for(settings, t): t for t in chosen if t not in settings.outboxes
    }
    for aggregate in settings.event_aggregates:
        out.setdefault(event_topic(settings, aggregate), QualifiedName(EVENTS_SCHEMA, aggregate))
    out[transaction_topic(settings)] = TRANSACTIONS
    out[notification_topic(settings)] = NOTIFICATIONS
    return out
