"""The Debezium connector config: one JSON template, values derived from Settings.

``connectors/postgres-connector.json`` holds ``${CHANGELAKE_*}`` placeholders. The native
runtime fills them from ``Settings`` here; the docker-compose runtime fills the same file with
``envsubst``. ``table.include.list`` is derived from ``Settings.captured`` (the ONE place the
captured tables are declared) plus the heartbeat table, which must be in the publication so the
heartbeat writes reach the connector and keep the slot advancing on an idle database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pipelines.config import Settings
from pipelines.contract import EVENTS_SEGMENT, message_topic, sanitize_topic, topic_for
from pipelines.naming import QualifiedName
from pipelines.stack.layout import CONNECTOR_TEMPLATE
from pipelines.stack.postgres import HEARTBEAT_SCHEMA, HEARTBEAT_TABLE, SIGNAL_TABLE

_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")
HEARTBEAT = QualifiedName(HEARTBEAT_SCHEMA, HEARTBEAT_TABLE)
SIGNAL = QualifiedName(HEARTBEAT_SCHEMA, SIGNAL_TABLE)


def include_tables(settings: Settings) -> tuple[QualifiedName, ...]:
    """Captured tables, the outbox tables, then the heartbeat and signal tables (Debezium reads
    signals from the WAL, so the signal table must be in the publication), without duplicates,
    in order."""
    return tuple(dict.fromkeys((*settings.captured, *settings.outboxes, HEARTBEAT, SIGNAL)))


def outbox_topic_regex(settings: Settings) -> str:
    """Java regex of the outbox tables' CDC topics: the records the Outbox Event Router routes
    (a topic predicate); one that matches no topic when there is no outbox table."""
    topics = [re.escape(topic_for(settings, t)) for t in settings.outboxes]
    return "|".join(topics) if topics else "(?!)"


def outbox_tombstone_topic(settings: Settings) -> str:
    """Where the outbox rows' tombstones are renamed to, to be filtered out at once: Kafka's
    ``HeaderFrom`` fails the task on a null value, and a topic predicate cannot also test for
    tombstones, so a ``RegexRouter`` applied to tombstones only renames the outbox's, and a
    ``Filter`` drops that name (one dot: never a table's ``<prefix>.<schema>.<table>``)."""
    return sanitize_topic(f"{settings.topic_prefix}.outbox-tombstone")


def event_topic_regex(settings: Settings) -> str:
    """Java regex of every domain-event topic (``event_topic`` for any aggregate type)."""
    return re.escape(sanitize_topic(f"{settings.topic_prefix}.{EVENTS_SEGMENT}.")) + ".+"


def template_env(settings: Settings) -> dict[str, str]:
    """Values of every placeholder the template may use (also exported for docker compose)."""
    return {
        "CHANGELAKE_PG_HOST": settings.connect_pg_host or settings.pg_host,
        "CHANGELAKE_PG_PORT": str(settings.connect_pg_port or settings.pg_port),
        "CHANGELAKE_PG_DATABASE": settings.pg_database,
        "CHANGELAKE_CDC_USER": settings.cdc_user,
        "CHANGELAKE_CDC_PASSWORD": settings.cdc_password,
        "CHANGELAKE_TOPIC_PREFIX": settings.topic_prefix,
        "CHANGELAKE_SLOT_NAME": settings.slot_name,
        "CHANGELAKE_PUBLICATION_NAME": settings.publication_name,
        # changelake keeps the table list (pipelines/stack/publication.py), Debezium never
        "CHANGELAKE_PUBLICATION_AUTOCREATE_MODE": "disabled",
        "CHANGELAKE_TABLE_INCLUDE_LIST": ",".join(
            t.include_list_regex for t in include_tables(settings)
        ),
        "CHANGELAKE_SIGNAL_DATA_COLLECTION": SIGNAL.data_collection,
        "CHANGELAKE_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
        "CHANGELAKE_MIN_COMPACTION_LAG_MS": str(settings.min_compaction_lag_ms),
        "CHANGELAKE_MAX_MESSAGE_BYTES": str(settings.max_message_bytes),
        "CHANGELAKE_TOPIC_CLEANUP_POLICY": settings.topic_cleanup_policy,
        # truncate events carry no key: a compacted topic would reject them and fail the task
        "CHANGELAKE_SKIPPED_OPERATIONS": "t"
        if settings.topic_cleanup_policy == "compact"
        else "none",
        "CHANGELAKE_OUTBOX_TOPIC_REGEX": outbox_topic_regex(settings),
        "CHANGELAKE_OUTBOX_TOMBSTONE_TOPIC": outbox_tombstone_topic(settings),
        "CHANGELAKE_OUTBOX_TOMBSTONE_TOPIC_REGEX": re.escape(outbox_tombstone_topic(settings)),
        "CHANGELAKE_EVENT_TOPIC_REGEX": event_topic_regex(settings),
    }


def publish_option(settings: Settings) -> str:
    """The publication's ``publish`` option. Truncate events carry no Kafka key and a compacted
    topic rejects key-less records (failing the task), so under the ``compact`` policy the
    publication itself leaves truncates out. (Debezium's ``skipped.operations=t`` would do the
    same, but Debezium 3.6 then emits ``ALTER PUBLICATION ... SET TABLE ... WITH (...)``, which
    PostgreSQL rejects, whenever it updates a filtered publication.)"""
    ops = "insert, update, delete"
    return ops if settings.topic_cleanup_policy == "compact" else f"{ops}, truncate"


def load_template() -> dict[str, str]:
    with open(CONNECTOR_TEMPLATE) as fh:
        return json.load(fh)


def render(
    settings: Settings,
    overrides: dict[str, str] | None = None,
    keyless: Sequence[QualifiedName] = (),
) -> dict[str, str]:
    """The connector config for ``settings``; placeholders substituted inside parsed JSON strings
    (so a value with quotes or backslashes, like the include-list regex, cannot break the JSON).

    ``keyless`` are captured tables without a primary key: Debezium sends their events without
    a Kafka key, which a compacted topic rejects, so under the ``compact`` policy their topics
    are created in a ``keyless`` group with ``cleanup.policy=delete`` and unlimited retention.
    """
    env = template_env(settings) | (overrides or {})

    def sub(value: Any) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise KeyError(f"{CONNECTOR_TEMPLATE}: unknown placeholder ${{{m.group(1)}}}")
            return env[m.group(1)]

        return _PLACEHOLDER.sub(one, str(value))

    config = {key: sub(value) for key, value in load_template().items()}
    if keyless and settings.topic_cleanup_policy == "compact":
        groups = [g for g in config.get("topic.creation.groups", "").split(",") if g]
        config |= {
            "topic.creation.groups": ",".join([*groups, "keyless"]),
            "topic.creation.keyless.include": ",".join(
                re.escape(topic_for(settings, t)) for t in keyless
            ),
            "topic.creation.keyless.cleanup.policy": "delete",
            "topic.creation.keyless.retention.ms": "-1",
            "topic.creation.keyless.replication.factor": config[
                "topic.creation.default.replication.factor"
            ],
            "topic.creation.keyless.partitions": config["topic.creation.default.partitions"],
            "topic.creation.keyless.max.message.bytes": config[
                "topic.creation.default.max.message.bytes"
            ],
        }
    return _notify_topic_group(settings, config)


def _notify_topic_group(settings: Settings, config: dict[str, str]) -> dict[str, str]:
    """The message topic never compacts: every logical decoding message carries the same key
    (its prefix), so compaction would keep only the newest notification."""
    if settings.topic_cleanup_policy != "compact":
        return config  # every topic keeps everything already
    groups = [g for g in config.get("topic.creation.groups", "").split(",") if g]
    return config | {
        "topic.creation.groups": ",".join([*groups, "notify"]),
        "topic.creation.notify.include": re.escape(message_topic(settings)),
        "topic.creation.notify.cleanup.policy": "delete",
        "topic.creation.notify.retention.ms": "-1",
        "topic.creation.notify.replication.factor": config[
            "topic.creation.default.replication.factor"
        ],
        "topic.creation.notify.partitions": config["topic.creation.default.partitions"],
    }


# The logical decoding messages Debezium streams (``message.prefix.include.list`` in the
# template holds this prefix, regex-escaped); the shop's notify.sql emits them.
NOTIFY_PREFIX = "changelake.notify"
