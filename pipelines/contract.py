"""The lake contract: the names every stage agrees on, in one place.

- **Topics**: Debezium's naming rule (``<prefix>.<schema>.<table>``, sanitised the way
  Debezium sanitises) for change events, domain events, transactions, notifications,
  heartbeats and logical decoding messages. The connector config, the lander, the sensors and
  the checks all import these.
- **Bronze metadata columns**: what decode adds to every change row (names and Arrow types),
  and the two more a bronze table has (``_before``, the hive ``_commit_date``); every other
  column of a bronze or silver table is a source column.
- **Iceberg names**: the metadata columns Iceberg engines reserve, renamed on the way in.

It depends on nothing but ``config`` and ``naming``, so any module may import it.
"""

from __future__ import annotations

import pyarrow as pa

from pipelines.config import Settings
from pipelines.naming import QualifiedName

# --- topics ----------------------------------------------------------------------------------
EVENTS_SEGMENT = "events"  # <prefix>.events.<aggregatetype>: the domain-event topics


def _valid_topic_char(unit: int) -> bool:
    return (
        unit in (0x2E, 0x5F, 0x2D)
        or 0x30 <= unit <= 0x39
        or 0x41 <= unit <= 0x5A
        or 0x61 <= unit <= 0x7A
    )


def sanitize_topic(name: str) -> str:
    """Debezium's topic-name sanitising: every UTF-16 unit outside ``[A-Za-z0-9._-]`` -> ``_``.

    (Debezium walks the Java string char by char, so a character outside the BMP, stored as a
    surrogate pair, becomes two underscores.)
    """
    units = name.encode("utf-16-le")
    out = []
    for i in range(0, len(units), 2):
        unit = int.from_bytes(units[i : i + 2], "little")
        out.append(chr(unit) if _valid_topic_char(unit) else "_")
    return "".join(out)


def topic_for(settings: Settings, table: QualifiedName) -> str:
    """The topic Debezium writes ``table``'s change events to: ``<prefix>.<schema>.<table>``."""
    return sanitize_topic(f"{settings.topic_prefix}.{table.schema}.{table.table}")


def event_topic(settings: Settings, aggregate: str) -> str:
    """Where the Outbox Event Router sends ``aggregate``'s domain events:
    ``<prefix>.events.<aggregatetype>`` (``route.topic.replacement`` in the template)."""
    return sanitize_topic(f"{settings.topic_prefix}.{EVENTS_SEGMENT}.{aggregate}")


def transaction_topic(settings: Settings) -> str:
    return sanitize_topic(f"{settings.topic_prefix}.transaction")


def notification_topic(settings: Settings) -> str:
    """Where Debezium's sink channel sends notifications (``notification.sink.topic.name``)."""
    return sanitize_topic(f"{settings.topic_prefix}.notifications")


def heartbeat_topic(settings: Settings) -> str:
    return sanitize_topic(f"__debezium-heartbeat.{settings.topic_prefix}")


def message_topic(settings: Settings) -> str:
    """Where Debezium's pgoutput connector sends logical decoding messages."""
    return sanitize_topic(f"{settings.topic_prefix}.message")


# --- bronze metadata columns -----------------------------------------------------------------
UTC_US = pa.timestamp("us", "UTC")
BRONZE_METADATA = pa.schema(
    [
        ("_op", pa.string()),
        ("_source_ts", UTC_US),
        ("_lsn", pa.int64()),
        ("_commit_lsn", pa.int64()),
        ("_tx_id", pa.int64()),
        ("_tx_order", pa.int64()),
        ("_snapshot", pa.string()),
        ("_topic", pa.string()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
        ("_kafka_ts", pa.timestamp("ms", "UTC")),
        ("_ingested_at", UTC_US),
        ("_unavailable", pa.list_(pa.string())),
    ]
)
BEFORE_COLUMN = "_before"  # the row before the change (REPLICA IDENTITY FULL), when sent
COMMIT_DATE = "_commit_date"  # bronze's hive partition (a directory, a column when read)
META_COLUMNS = frozenset({*BRONZE_METADATA.names, BEFORE_COLUMN, COMMIT_DATE})

# --- Iceberg ---------------------------------------------------------------------------------
# lake column -> Iceberg column: names Iceberg engines reserve for their metadata columns
ICEBERG_COLUMN_NAMES = {"_partition": "_kafka_partition"}
