"""The non-table outputs of a batch: the quarantine table and the transaction-metadata table.

Quarantine keeps the raw key/value bytes untouched so a message can be replayed or inspected
exactly as Kafka delivered it; the reason says why it was set aside.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from pipelines.contract import UTC_US
from pipelines.decode import RawMessage

KAFKA_TS = pa.timestamp("ms", "UTC")

# where a side-topic row (transactions, notifications) came from and when it was landed
SIDE_TOPIC_COORDINATES = (
    ("_topic", pa.string()),
    ("_partition", pa.int32()),
    ("_offset", pa.int64()),
    ("_kafka_ts", KAFKA_TS),
    ("_ingested_at", UTC_US),
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("kafka_ts", KAFKA_TS),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("error", pa.string()),
        ("quarantined_at", UTC_US),
    ]
)

TX_COLLECTION = pa.struct([("data_collection", pa.string()), ("event_count", pa.int64())])
TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("status", pa.string()),
        ("id", pa.string()),
        ("event_count", pa.int64()),
        ("data_collections", pa.list_(TX_COLLECTION)),
        ("ts", KAFKA_TS),
        *SIDE_TOPIC_COORDINATES,
    ]
)


class Quarantine:
    """Collects messages set aside in a batch, with the reason."""

    def __init__(self, quarantined_at: datetime) -> None:
        self._at = quarantined_at
        self._rows: list[tuple[RawMessage, str]] = []

    def add(self, msg: RawMessage, reason: str) -> None:
        self._rows.append((msg, reason))

    def __len__(self) -> int:
        return len(self._rows)

    def table(self) -> pa.Table:
        rows = sorted(self._rows, key=lambda r: (r[0].topic, r[0].partition, r[0].offset))
        msgs = [m for m, _ in rows]
        return pa.Table.from_arrays(
            [
                pa.array([m.topic for m in msgs], pa.string()),
                pa.array([m.partition for m in msgs], pa.int32()),
                pa.array([m.offset for m in msgs], pa.int64()),
                pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(KAFKA_TS),
                pa.array([m.key for m in msgs], pa.binary()),
                pa.array([m.value for m in msgs], pa.binary()),
                pa.array([r for _, r in rows], pa.string()),
                pa.array([self._at] * len(msgs), UTC_US),
            ],
            schema=QUARANTINE_SCHEMA,
        )


def transactions_table(
    items: list[tuple[RawMessage, dict]], ingested_at: datetime
) -> tuple[pa.Table, list[tuple[RawMessage, str]]]:
    """Rows of the ``<prefix>.transaction`` topic; malformed ones are returned for quarantine."""
    fast = _transactions_fast(items, ingested_at)
    if fast is not None:
        return fast, []
    good: list[tuple[RawMessage, tuple]] = []
    bad: list[tuple[RawMessage, str]] = []
    for msg, p in items:
        try:
            colls = p.get("data_collections") or None
            if colls is not None:
                colls = [(c["data_collection"], int(c["event_count"])) for c in colls]
            count = p.get("event_count")
            ts = p.get("ts_ms")
            good.append(
                (
                    msg,
                    (
                        p["status"],
                        p["id"],
                        None if count is None else int(count),
                        colls,
                        None if ts is None else int(ts),
                    ),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            bad.append((msg, f"malformed transaction message: {exc!r}"))
    msgs = [m for m, _ in good]
    vals = [v for _, v in good]
    cols = [
        pa.array([v[0] for v in vals], pa.string()),
        pa.array([v[1] for v in vals], pa.string()),
        pa.array([v[2] for v in vals], pa.int64()),
        pa.array(
            [
                None
                if v[3] is None
                else [dict(zip(("data_collection", "event_count"), c, strict=True)) for c in v[3]]
                for v in vals
            ],
            pa.list_(TX_COLLECTION),
        ),
        pa.array([v[4] for v in vals], pa.int64()).cast(KAFKA_TS),
        pa.array([m.topic for m in msgs], pa.string()),
        pa.array([m.partition for m in msgs], pa.int32()),
        pa.array([m.offset for m in msgs], pa.int64()),
        pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(KAFKA_TS),
        pa.array([ingested_at] * len(msgs), UTC_US),
    ]
    return pa.Table.from_arrays(cols, schema=TRANSACTIONS_SCHEMA), bad


def _ints_or_none(values: list) -> bool:
    return all(v is None or v.__class__ is int for v in values)


def _transactions_fast(
    items: list[tuple[RawMessage, dict]], ingested_at: datetime
) -> pa.Table | None:
    """``transactions_table`` column-wise for well-formed messages (plain ints, a list of
    ``{data_collection: str, event_count: int}``); None sends the batch the per-message way."""
    msgs = [m for m, _ in items]
    payloads = [p for _, p in items]
    counts = [p.get("event_count") for p in payloads]
    ts = [p.get("ts_ms") for p in payloads]
    if not _ints_or_none(counts) or not _ints_or_none(ts):
        return None
    colls = [p.get("data_collections") or None for p in payloads]
    if not all(c is None or c.__class__ is list for c in colls):
        return None
    flat = [c for cs in colls if cs is not None for c in cs]
    if not all(
        c.__class__ is dict
        and "data_collection" in c
        and "event_count" in c
        and c["event_count"].__class__ is int
        and (c["data_collection"] is None or c["data_collection"].__class__ is str)
        for c in flat
    ):
        return None
    offsets = [0]
    for cs in colls:
        offsets.append(offsets[-1] + (len(cs) if cs is not None else 0))
    entries = pa.StructArray.from_arrays(
        [
            pa.array([c["data_collection"] for c in flat], pa.string()),
            pa.array([c["event_count"] for c in flat], pa.int64()),
        ],
        fields=list(TX_COLLECTION),
    )
    null = [c is None for c in colls]
    collections = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        entries,
        type=pa.list_(TX_COLLECTION),
        mask=pa.array(null, pa.bool_()) if any(null) else None,
    )
    cols = [
        pa.array([p["status"] for p in payloads], pa.string()),
        pa.array([p["id"] for p in payloads], pa.string()),
        pa.array(counts, pa.int64()),
        collections,
        pa.array(ts, pa.int64()).cast(KAFKA_TS),
        pa.array([m.topic for m in msgs], pa.string()),
        pa.array([m.partition for m in msgs], pa.int32()),
        pa.array([m.offset for m in msgs], pa.int64()),
        pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(KAFKA_TS),
        pa.array([ingested_at] * len(msgs), UTC_US),
    ]
    return pa.Table.from_arrays(cols, schema=TRANSACTIONS_SCHEMA)
