"""Rows of Debezium's notification topic (``notification.enabled.channels=sink``).

Debezium reports snapshot progress there (``aggregate_type`` "Incremental Snapshot" / "Initial
Snapshot", ``type`` STARTED, IN_PROGRESS, TABLE_SCAN_COMPLETED, COMPLETED, ABORTED, ...) with
a string map ``additional_data`` and a ``timestamp`` in epoch milliseconds (a string). The map
is kept whole as JSON; the keys silver reads are also columns of their own.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa

from pipelines.decode import RawMessage
from pipelines.decode.special import KAFKA_TS, SIDE_TOPIC_COORDINATES, UTC_US

# additional_data keys promoted to columns (absent keys are NULL)
DATA_KEYS = ("data_collections", "current_collection_in_progress", "scanned_collection", "status")

NOTIFICATIONS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("aggregate_type", pa.string()),
        ("type", pa.string()),
        *[(k, pa.string()) for k in DATA_KEYS],
        ("additional_data", pa.string()),
        ("ts", KAFKA_TS),
        *SIDE_TOPIC_COORDINATES,
    ]
)


def _row(p: object) -> tuple:
    if not isinstance(p, dict):
        raise TypeError("payload is not an object")
    ident, agg, kind = p["id"], p["aggregate_type"], p["type"]
    if not all(isinstance(v, str) for v in (ident, agg, kind)):
        raise TypeError("id, aggregate_type and type must be strings")
    data = p.get("additional_data") or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise TypeError("additional_data is not a map of strings")
    ts = p.get("timestamp")
    ts = None if ts is None else int(ts)  # Debezium sends a string of epoch milliseconds
    return (ident, agg, kind, *[data.get(k) for k in DATA_KEYS], orjson.dumps(data).decode(), ts)


def notifications_table(
    items: list[tuple[RawMessage, object]], ingested_at: datetime
) -> tuple[pa.Table, list[tuple[RawMessage, str]]]:
    """The notification rows; malformed ones are returned for quarantine."""
    good: list[tuple[RawMessage, tuple]] = []
    bad: list[tuple[RawMessage, str]] = []
    for msg, p in items:
        try:
            good.append((msg, _row(p)))
        except (KeyError, TypeError, ValueError) as exc:
            bad.append((msg, f"malformed notification message: {exc!r}"))
    msgs = [m for m, _ in good]
    vals = [v for _, v in good]
    n = 3 + len(DATA_KEYS) + 1
    cols = [pa.array([v[i] for v in vals], pa.string()) for i in range(n)]
    cols += [
        pa.array([v[n] for v in vals], pa.int64()).cast(KAFKA_TS),
        pa.array([m.topic for m in msgs], pa.string()),
        pa.array([m.partition for m in msgs], pa.int32()),
        pa.array([m.offset for m in msgs], pa.int64()),
        pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(KAFKA_TS),
        pa.array([ingested_at] * len(msgs), UTC_US),
    ]
    return pa.Table.from_arrays(cols, schema=NOTIFICATIONS_SCHEMA), bad
