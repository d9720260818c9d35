"""The lake side of ``changelake status``: per table, how far landing and compaction have got.

For every captured table (and any other table the lake holds): the landed offset against the
topic's end offset (lag, in Kafka records: change events and tombstones), the bronze files and
rows of complete batches, the silver snapshot ``current`` points at with its watermark (commit
time and LSN) and freshness (now - watermark time), and the messages quarantined from its topic;
the same for the transaction-metadata topic.

Everything comes from the lake itself: one walk of it (``bronze.layout.list_lake``), row counts
from the Parquet footers in one DuckDB query (no row is read), silver manifests. Kafka figures
need the end offsets, which the caller passes (``None`` when Kafka is unreachable: the lake
figures are still shown, the Kafka ones are ``None``).

``LakeStatus.as_dict()`` is the ``lake`` part of ``changelake status --json``; its keys are
stable (``version`` changes if one is renamed or removed):

    root, kafka_available, generated_at (ISO, UTC), quarantined (all topics), version,
    tables: [{table, captured, topic, lag, partitions: [{partition, landed_offset,
              end_offset, lag}], bronze_files, bronze_rows, quarantined,
              silver: null | {snapshot_id, rows, watermark_lsn, watermark_lsn_text,
                              watermark_ts, freshness_seconds, created_at},
              snapshotting: null | {id, started, filtered, partial}}],
    transactions: {same keys as a table, silver always null}

``landed_offset`` is Kafka's position convention: the offset after the highest landed one (0
when nothing has landed), so ``lag = end_offset - landed_offset``; ``None`` where unknown (Kafka
unreachable, or a landed partition Kafka no longer has). A topic Kafka does not have yet (no
change to that table so far) has no partitions and lag 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.bronze.layout import (
    QUARANTINE,
    TRANSACTIONS,
    LakeListing,
    list_lake,
    quarantine_dir,
)
from pipelines.bronze.reader import bronze_tables, files, landed_offsets
from pipelines.bronze.topics import bronze_topic, transaction_topic
from pipelines.config import Settings
from pipelines.decode.events import event_table
from pipelines.naming import QualifiedName
from pipelines.silver.snapshot_progress import running_now
from pipelines.silver.snapshots import Manifest, current

JSON_VERSION = 1
EndOffsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    landed_offset: int
    end_offset: int | None
    lag: int | None


@dataclass(frozen=True)
class SilverStatus:
    snapshot_id: str
    rows: int
    watermark_lsn: int | None
    watermark_lsn_text: str | None
    watermark_ts: str | None
    freshness_seconds: float | None
    created_at: str


@dataclass(frozen=True)
class TableStatus:
    table: str
    captured: bool
    topic: str
    lag: int | None
    partitions: tuple[PartitionLag, ...]
    bronze_files: int
    bronze_rows: int
    quarantined: int
    silver: SilverStatus | None
    # an incremental snapshot of the table still running (partial: bringing its rows in)
    snapshotting: dict | None = None


@dataclass(frozen=True)
class LakeStatus:
    root: str
    kafka_available: bool
    generated_at: str
    tables: tuple[TableStatus, ...]
    transactions: TableStatus
    quarantined: int

    def as_dict(self) -> dict:
        """JSON-ready, with the stable keys listed in the module doc."""
        return {"version": JSON_VERSION, **asdict(self)}


def lsn_text(lsn: int | None) -> str | None:
    """PostgreSQL's text form of an LSN (``pg_lsn``), e.g. ``0/16B3748``."""
    return None if lsn is None else f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _counts(groups: dict[str, list[Path]]) -> dict[str, tuple[int, int]]:
    """(files, rows) per group, the rows from the Parquet footers, in one DuckDB query."""
    names = [str(p) for ps in groups.values() for p in ps]
    if not names:
        return {}
    mapping = pa.table({"file_name": names, "grp": [g for g, ps in groups.items() for _ in ps]})
    with duckdb.connect(":memory:") as con:
        con.register("mapping", mapping)
        rows = con.execute(
            "SELECT grp, count(*), coalesce(sum(num_rows), 0)::BIGINT FROM mapping "
            "JOIN parquet_file_metadata($1) USING (file_name) GROUP BY grp",
            [sorted(set(names))],
        ).fetchall()
    return {g: (int(n), int(r)) for g, n, r in rows}


def _quarantine_files(lake: Path, listing: LakeListing) -> dict[str, list[Path]]:
    """Complete quarantine files by the topic they came from."""
    out: dict[str, list[Path]] = {}
    for batch, fs in listing.complete.items():
        qdir = quarantine_dir(lake, batch.topic)
        out.setdefault(batch.topic, []).extend(f.path for f in fs if f.path.parent == qdir)
    return {t: ps for t, ps in out.items() if ps}


def partition_lags(
    topic: str, landed: dict[tuple[str, int], int], ends: EndOffsets | None
) -> tuple[PartitionLag, ...]:
    parts = {p for t, p in landed if t == topic}
    if ends is not None:  # a topic Kafka does not have yet: no partitions, nothing waits
        parts |= {p for t, p in ends if t == topic}
    out = []
    for p in sorted(parts):
        pos = landed.get((topic, p), -1) + 1
        end = None if ends is None else ends.get((topic, p))
        out.append(PartitionLag(p, pos, end, None if end is None else max(end - pos, 0)))
    return tuple(out)


def total_lag(parts: tuple[PartitionLag, ...], ends: EndOffsets | None) -> int | None:
    """The records left over ``parts``; None when Kafka or one partition's end is unknown."""
    lags = [p.lag for p in parts]
    return None if ends is None or None in lags else sum(lags)  # type: ignore[arg-type]


def _snap(lake: Path, table: QualifiedName) -> dict | None:
    run = running_now(lake, table)
    if run is None:
        return None
    return {
        "id": run.id,
        "started": run.started.isoformat(),
        "filtered": run.filtered,
        "partial": run.initial,
    }


def silver_status(lake: Path, table: QualifiedName, now: datetime) -> SilverStatus | None:
    """The live silver snapshot of ``table`` in the Parquet lake (None: none yet)."""
    m: Manifest | None = current(lake, table)
    if m is None:
        return None
    wt = m.watermark_time
    return SilverStatus(
        snapshot_id=m.snapshot_id,
        rows=m.rows,
        watermark_lsn=m.watermark_lsn,
        watermark_lsn_text=lsn_text(m.watermark_lsn),
        watermark_ts=m.watermark_ts,
        freshness_seconds=None if wt is None else round((now - wt).total_seconds(), 3),
        created_at=m.created_at,
    )


def lake_status(
    settings: Settings, end_offsets: EndOffsets | None, *, now: datetime | None = None
) -> LakeStatus:
    """The lake's figures; ``end_offsets`` per (topic, partition) from Kafka, ``None`` if down."""
    lake = settings.lake_root
    now = now or datetime.now(UTC)
    listing = list_lake(lake)
    landed = landed_offsets(lake, listing)
    captured = list(settings.captured)
    declared = captured + [event_table(a) for a in settings.event_aggregates]  # and landed
    extra = [t for t in bronze_tables(lake) if isinstance(t, QualifiedName) and t not in captured]
    tables = [*captured, *extra]
    quarantine = _quarantine_files(lake, listing)
    groups: dict[str, list[Path]] = {str(t): files(lake, t, listing) for t in tables}
    groups[TRANSACTIONS] = files(lake, TRANSACTIONS, listing)
    groups.update({f"{QUARANTINE}:{topic}": ps for topic, ps in quarantine.items()})
    counts = _counts(groups)

    def one(
        name: str,
        topic: str,
        silver: SilverStatus | None,
        is_captured: bool,
        snap: dict | None = None,
    ) -> TableStatus:
        parts = partition_lags(topic, landed, end_offsets)
        lag = total_lag(parts, end_offsets)
        n_files, n_rows = counts.get(name, (0, 0))
        return TableStatus(
            table=name,
            captured=is_captured,
            topic=topic,
            lag=lag,
            partitions=parts,
            bronze_files=n_files,
            bronze_rows=n_rows,
            quarantined=counts.get(f"{QUARANTINE}:{topic}", (0, 0))[1],
            silver=silver,
            snapshotting=snap,
        )

    rows = tuple(
        one(
            str(t),
            bronze_topic(settings, t),
            silver_status(lake, t, now),
            t in declared,
            _snap(lake, t),
        )
        for t in tables
    )
    tx = one(TRANSACTIONS, transaction_topic(settings), None, True)
    total_q = sum(counts.get(f"{QUARANTINE}:{t}", (0, 0))[1] for t in quarantine)
    return LakeStatus(
        root=str(lake),
        kafka_available=end_offsets is not None,
        generated_at=now.isoformat(),
        tables=rows,
        transactions=tx,
        quarantined=total_q,
    )
