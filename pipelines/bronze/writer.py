"""Write one consumed batch as n Parquet files, each atomically, and recover from crashes.

Atomic per file: write ``.<name>.tmp`` in the target directory, fsync it, rename, fsync the
directory.  All-or-nothing per batch: the ``<k>of<n>`` in the names lets ``recover`` (run by
the lander on start) delete the files of a batch that did not finish, whose offsets are then
consumed again.  Crash points for tests: ``CHANGELAKE_CRASH_AT`` = ``mid_write`` |
``before_rename`` | ``after_rename`` (after the first file of a batch is renamed) |
``before_commit`` (checked by the lander); ``CHANGELAKE_CRASH_SKIP=N`` passes the point N
times first, so a crash can hit mid-stream.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.bronze.layout import (
    DATE_PARTITION,
    NOTIFICATIONS,
    TRANSACTIONS,
    BatchId,
    list_lake,
    marker_dir,
    quarantine_dir,
    table_dir,
)
from pipelines.durable import fsync_dir
from pipelines.naming import QualifiedName

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 128 * 1024
CRASH_POINTS = ("mid_write", "before_rename", "after_rename", "before_commit")
_DATE_SOURCES = ("_source_ts", "_kafka_ts", "_ingested_at")
_crash_hits: dict[str, int] = {}
_crash_also: list[int] = []  # pids killed with this one: the lander, when this is its worker


def also_kill_on_crash(pid: int) -> None:
    """A crash point hit in the decode worker crashes the lander as well (a whole-lander crash)."""
    _crash_also.append(pid)


def crash_point(name: str) -> None:
    """SIGKILL this process if ``CHANGELAKE_CRASH_AT`` names this point (tests only)."""
    if os.environ.get("CHANGELAKE_CRASH_AT") != name:
        return
    hits = _crash_hits.get(name, 0)
    _crash_hits[name] = hits + 1
    if hits >= int(os.environ.get("CHANGELAKE_CRASH_SKIP", "0")):
        log.warning("crash point %s reached: SIGKILL", name)
        for pid in _crash_also:
            os.kill(pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class WrittenBatch:
    """What one batch put in the lake."""

    batch: BatchId
    paths: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # bronze table (str) -> rows
    quarantined: int = 0
    transactions: int = 0
    notifications: int = 0
    # the columns freshness is measured from (``service.freshness``), of the rows written:
    # per table ``TIMING_COLUMNS``, of the transactions ``TX_TIMING_COLUMNS`` (zero-copy)
    timing: dict[QualifiedName, pa.Table] = field(default_factory=dict)
    tx_timing: pa.Table | None = None

    def time_rows(self, table: QualifiedName, rows: pa.Table) -> None:
        """Keep ``rows``' timing columns (a table's rows this batch wrote)."""
        if rows.num_rows:
            self.timing[table] = rows.select([c for c in TIMING_COLUMNS if c in rows.column_names])

    def time_transactions(self, rows: pa.Table | None) -> None:
        """Keep the timing columns of the transaction rows this batch wrote (those it has)."""
        if rows is not None and rows.num_rows:
            self.tx_timing = rows.select([c for c in TX_TIMING_COLUMNS if c in rows.column_names])

    def ended_collections(self) -> set[str]:
        """The data collections (``QualifiedName.data_collection``) named by the transaction
        ENDs this batch landed: their rows may have become complete, so compactable."""
        t = self.tx_timing
        if t is None or not {"status", "data_collections"} <= set(t.column_names):
            return set()
        colls = pc.list_flatten(t.filter(pc.equal(t["status"], "END"))["data_collections"])
        return set(pc.unique(pc.struct_field(colls, "data_collection")).drop_null().to_pylist())


TIMING_COLUMNS = ("_source_ts", "_tx_id", "_tx_order", "_op")
TX_TIMING_COLUMNS = ("status", "id", "data_collections", "ts")


def commit_dates(table: pa.Table, fallback: datetime) -> pa.Array:
    """UTC date of each row: commit time, else Kafka time, else ingestion time."""
    dates: pa.Array | None = None
    for name in _DATE_SOURCES:
        if name in table.column_names and pa.types.is_timestamp(table.schema.field(name).type):
            d = pc.cast(table.column(name), pa.date32())
            dates = d if dates is None else pc.coalesce(dates, d)
    fill = pa.scalar(fallback.date(), pa.date32())
    if dates is None:
        return pa.array([fallback.date()] * table.num_rows, pa.date32())
    return pc.fill_null(dates, fill).combine_chunks()


def split_by_date(table: pa.Table, fallback: datetime) -> list[tuple[str, pa.Table]]:
    """Split rows by commit date (vectorised: one filter per distinct date)."""
    dates = commit_dates(table, fallback)
    uniq = sorted(pc.unique(dates).to_pylist())
    if len(uniq) == 1:
        return [(uniq[0].isoformat(), table)]
    return [(d.isoformat(), table.filter(pc.equal(dates, pa.scalar(d, pa.date32())))) for d in uniq]


def _with_table_meta(table: pa.Table, name: str) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[b"changelake.table"] = name.encode()
    if DATE_PARTITION in table.column_names:  # the path carries it; a column would clash
        table = table.drop_columns([DATE_PARTITION])
    return table.replace_schema_metadata(meta)


def plan_files(
    lake: Path,
    batch: BatchId,
    tables: Mapping[QualifiedName, pa.Table],
    transactions: pa.Table | None,
    quarantine: pa.Table | None,
    ingested_at: datetime,
    notifications: pa.Table | None = None,
) -> list[tuple[Path, pa.Table]]:
    """Every (directory, rows) this batch must write, in a deterministic order."""
    parts: list[tuple[Path, pa.Table]] = []
    for name in sorted(tables):
        t = tables[name]
        if t.num_rows == 0:
            continue
        t = _with_table_meta(t, str(name))
        for day, rows in split_by_date(t, ingested_at):
            parts.append((table_dir(lake, name) / f"{DATE_PARTITION}={day}", rows))
    if transactions is not None and transactions.num_rows:
        t = _with_table_meta(transactions, TRANSACTIONS)
        for day, rows in split_by_date(t, ingested_at):
            parts.append((table_dir(lake, TRANSACTIONS) / f"{DATE_PARTITION}={day}", rows))
    if notifications is not None and notifications.num_rows:
        t = _with_table_meta(notifications, NOTIFICATIONS)
        for day, rows in split_by_date(t, ingested_at):
            parts.append((table_dir(lake, NOTIFICATIONS) / f"{DATE_PARTITION}={day}", rows))
    if quarantine is not None and quarantine.num_rows:
        parts.append((quarantine_dir(lake, batch.topic), quarantine))
    return parts


def _makedirs(path: Path) -> None:
    """mkdir -p, fsyncing the parent of every directory created so the entry is durable."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        fsync_dir(d.parent)


def write_file(path: Path, table: pa.Table) -> None:
    """Atomically write ``table`` to ``path`` (temp in the same dir, fsync, rename, fsync dir)."""
    _makedirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
    writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    crash_point("mid_write")  # the footer is not written yet: a torn temp file
    writer.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    crash_point("before_rename")
    os.rename(tmp, path)
    fsync_dir(path.parent)


def write_batch(
    lake: Path,
    batch: BatchId,
    tables: Mapping[QualifiedName, pa.Table],
    transactions: pa.Table | None,
    quarantine: pa.Table | None,
    ingested_at: datetime,
    notifications: pa.Table | None = None,
) -> WrittenBatch:
    """Land one batch: its n files, or one empty marker when it had no rows at all."""
    parts = plan_files(lake, batch, tables, transactions, quarantine, ingested_at, notifications)
    out = WrittenBatch(batch)
    if not parts:
        d = marker_dir(lake, batch.topic)
        _makedirs(d)
        path = d / batch.file_name(1, 1, "landed")
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        fsync_dir(d)
        out.paths.append(path)
        return out
    n = len(parts)
    for k, (directory, rows) in enumerate(parts, start=1):
        path = directory / batch.file_name(k, n)
        write_file(path, rows)
        out.paths.append(path)
        if k == 1:
            crash_point("after_rename")
    for name, t in tables.items():
        if t.num_rows:
            out.rows[str(name)] = out.rows.get(str(name), 0) + t.num_rows
            out.time_rows(name, t)
    out.time_transactions(transactions)
    out.transactions = transactions.num_rows if transactions is not None else 0
    out.notifications = notifications.num_rows if notifications is not None else 0
    out.quarantined = quarantine.num_rows if quarantine is not None else 0
    return out


@dataclass
class Recovery:
    """What ``recover`` removed."""

    incomplete_batches: int = 0
    deleted_files: int = 0
    deleted_temps: int = 0
    pruned_markers: int = 0


def recover(lake: Path) -> Recovery:
    """Delete temp files and the files of incomplete batches; prune superseded markers.

    Safe only while no lander writes to ``lake`` (the lander holds a lock when it calls this).
    """
    listing = list_lake(lake)
    rec = Recovery()
    dirs: set[Path] = set()
    for p in listing.temp_files:
        p.unlink(missing_ok=True)
        dirs.add(p.parent)
        rec.deleted_temps += 1
    for batch, fs in listing.incomplete.items():
        log.warning("deleting %d file(s) of incomplete batch %s", len(fs), batch)
        rec.incomplete_batches += 1
        for f in fs:
            f.path.unlink(missing_ok=True)
            dirs.add(f.path.parent)
            rec.deleted_files += 1
    newest: dict[tuple[str, int], int] = {}
    for b in listing.complete:
        newest[(b.topic, b.partition)] = max(newest.get((b.topic, b.partition), -1), b.last)
    for b, fs in listing.complete.items():
        if b.last < newest[(b.topic, b.partition)]:
            for f in fs:
                if f.path.suffix == ".landed":
                    f.path.unlink(missing_ok=True)
                    dirs.add(f.path.parent)
                    rec.pruned_markers += 1
    for d in dirs:
        if d.exists():
            fsync_dir(d)
    return rec


def describe_key(meta: Mapping[bytes, bytes] | None) -> list[str] | None:
    """The ``changelake.key`` of a schema's metadata, if any."""
    raw = (meta or {}).get(b"changelake.key")
    return None if raw is None else list(json.loads(raw))
