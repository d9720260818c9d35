"""Silver compaction on the Iceberg tables: the current silver snapshot + the bronze events after
its watermark -> the next silver snapshot, one Iceberg commit.

For ``CHANGELAKE_LAKE_FORMAT=iceberg``, where the lander commits bronze straight to Iceberg
(``landing``) and there is no Parquet lake to compact. The state is what ``timetravel.as_of``
computes, by the same SQL (``timetravel.replay_sql``: ``rules``/``plan``, the definition the
Parquet lake's compaction uses), but over every complete event instead of up to an instant; it
is written as ``silver_publish`` writes a silver snapshot: one ``overwrite`` snapshot whose
summary records the new snapshot id and its watermark (LSN and commit time), rewriting only the
key partitions whose rows changed. So ``as_of``, the DuckDB catalog file and another engine's
``VERSION AS OF`` read these snapshots exactly as published ones.

Its cost follows the change, not the table: when silver is partitioned into key ranges
(``partitioning``: an integer key) and the new events hold no TRUNCATE, only the start
snapshot's rows in the ranges the events' keys fall in are read, replayed and diffed, and the
commit replaces just those partitions (``commit_state(only=...)``); every other data file
stays as it is. A schema change, a new partition spec or another compactor's snapshot in
between (``NotPartial``) makes it start again over the whole start snapshot. Other keys
(bucketed, none) read the whole start snapshot and still rewrite only the changed partitions.

Its states are ``silver_publish``'s crash points (checking, staged, committed): a crash before
the commit leaves the previous snapshot current (the retry computes the same state again, or a
newer one); the commit itself is atomic. Two compactors of one table may race: each state is
correct at its own watermark, the catalog's swap picks one, and a compactor that finds a newer
id published skips its own. Old snapshots are expired down to ``silver_keep_snapshots``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from pipelines.config import Settings
from pipelines.iceberg import engine, partitioning
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.names import BRONZE, SILVER
from pipelines.iceberg.published import Published
from pipelines.iceberg.retention import retain_table
from pipelines.iceberg.silver_publish import (
    NotPartial,
    commit_state,
    iceberg_snapshot_for,
    published_snapshot,
)
from pipelines.iceberg.sources import key_of, maybe_table, scan
from pipelines.iceberg.timetravel import Base, replay_sql, watermarked
from pipelines.naming import QualifiedName, quote_ident
from pipelines.silver.retention import policy
from pipelines.silver.snapshots import Manifest, next_snapshot_id


@dataclass
class Compacted:
    """What one Iceberg compaction did (CLI, Dagster metadata)."""

    table: str
    snapshot_id: str | None = None  # the new silver snapshot (None: nothing new)
    events_applied: int = 0
    rows: int = 0
    watermark_lsn: int | None = None
    watermark_ts: str | None = None
    published: Published | None = None
    seconds: float = 0.0
    start_rows_read: int = 0  # rows read from the start snapshot
    partial: bool = False  # only the start snapshot's partitions the events touch were read

    @property
    def changed(self) -> bool:
        return self.snapshot_id is not None


def compact(
    settings: Settings, table: QualifiedName, *, partition_bytes: int | None = None
) -> Compacted:
    """Compact ``table``'s Iceberg bronze into its Iceberg silver (see the module): from the
    start snapshot's partitions the new events touch when it can (``_touched``), else whole."""
    try:
        return _compact(settings, table, partition_bytes, partial=True)
    except NotPartial:  # the schema, the spec or the published snapshot moved: do it whole
        return _compact(settings, table, partition_bytes, partial=False)


@dataclass
class _State:
    """The new silver state: of every row, or (``only``) of just the partitions listed."""

    events: int
    watermark_lsn: int
    watermark_ts: datetime
    rows: pa.Table
    base_rows: pa.Table | None  # the start snapshot's rows of the same partitions
    only: list | None = None
    total_rows: int = 0  # rows of the whole table in the new state


def _compact(
    settings: Settings, table: QualifiedName, partition_bytes: int | None, *, partial: bool
) -> Compacted:
    t0 = time.monotonic()
    out = Compacted(str(table))
    catalog = open_catalog(settings)
    bronze = maybe_table(catalog, BRONZE, table)
    if bronze is None:
        return out
    silver = maybe_table(catalog, SILVER, table)
    bases = watermarked(silver) if silver is not None else []
    base = bases[-1] if bases else None
    micros = settings.iceberg_time_as_micros
    new = _new_state(settings, catalog, table, (silver, base), bronze, partial=partial)
    if new is None:
        out.seconds = time.monotonic() - t0
        return out
    wlsn, wts = new.watermark_lsn, new.watermark_ts
    if base is not None:  # the watermark never moves back (a batch of only older events)
        wlsn = max(wlsn, base.watermark_lsn) if base.watermark_lsn is not None else wlsn
        wts = max(wts, base.watermark_time)
    now = datetime.now(UTC)
    parent = published_snapshot(silver) if silver is not None else None
    m = Manifest(
        snapshot_id=next_snapshot_id(parent, now),
        table=str(table),
        key=key_of(silver, bronze),
        created_at=now.isoformat(),
        parent=parent,
        watermark_lsn=int(wlsn),
        watermark_ts=wts.isoformat(),
        rows=new.total_rows,
        events_applied=new.events,
        full=base is None,
    )
    report = Published(SILVER, str(table))

    def state(snapshot_id: str) -> pa.Table | None:
        """A published state, the diff's base: read as the new state was (DuckDB, then
        ``to_iceberg``), so equal rows hash equal (pyiceberg's own reader types differ)."""
        sid = iceberg_snapshot_for(silver, snapshot_id) if silver is not None else None
        if sid is None:
            return None
        if base is not None and sid == base.snapshot_id and new.base_rows is not None:
            return to_iceberg(new.base_rows, time_as_micros=micros)
        if new.only is not None:
            raise NotPartial(f"silver {table}: the diff's base is not the start snapshot")
        with engine.connect(settings) as con:
            old = con.sql(f"SELECT * FROM {scan(silver, sid)}").to_arrow_table()  # noqa: S608
        return to_iceberg(old, time_as_micros=micros)

    silver = commit_state(
        catalog,
        silver,
        table,
        new.rows,
        m,
        state,
        report,
        partition_bytes or settings.iceberg_silver_partition_bytes,
        only=new.only,
    )
    keep_last, keep_every = policy(settings, None, None)
    expired, report.files_deleted = retain_table(silver, keep_last=keep_last, keep_every=keep_every)
    report.expired = len(expired)
    out.snapshot_id = m.snapshot_id if report.snapshots else None
    out.events_applied, out.rows = new.events, new.total_rows
    out.start_rows_read = new.base_rows.num_rows if new.base_rows is not None else 0
    out.partial = new.only is not None
    out.watermark_lsn, out.watermark_ts = m.watermark_lsn, m.watermark_ts
    out.published, out.seconds = report, time.monotonic() - t0
    return out


def _new_state(
    settings: Settings,
    catalog: SqlCatalog,
    table: QualifiedName,
    start: tuple[Table | None, Base | None],
    bronze: Table,
    *,
    partial: bool,
) -> _State | None:
    """The state after the bronze events past ``start``'s watermark (None: there are none).

    The start snapshot is a view while the events are gathered; then it is read once, as
    arrow (the replay's base and the diff's): with ``partial``, only the rows of the
    partitions the events touch (``_touched``), when the table's partitioning allows it."""
    silver, base = start
    with engine.connect(settings) as con:
        given, base_scan = None, ""
        if base is not None and silver is not None:
            base_scan = scan(silver, base.snapshot_id)
            con.execute(f"CREATE TEMP VIEW base_state AS SELECT * FROM {base_scan}")  # noqa: S608
            given = "base_state"
        sql = replay_sql(con, catalog, table, start, bronze, "new_events", base_relation=given)
        n, wlsn, wts = con.execute(
            "SELECT count(*), max(_commit_lsn), max(_source_ts) FROM new_events"
        ).fetchone()
        if n == 0:
            return None
        only, base_rows, where = None, None, "true"
        if given is not None and silver is not None:
            if partial:
                only, where = _touched(con, silver, key_of(silver, bronze))
            base_rows = con.sql(f"SELECT * FROM {base_scan} WHERE {where}").to_arrow_table()  # noqa: S608
            con.execute("DROP VIEW base_state")
            con.register("base_state", base_rows)
        rows = to_iceberg(
            con.sql(sql).to_arrow_table(), time_as_micros=settings.iceberg_time_as_micros
        )
    total = rows.num_rows
    if only is not None and base is not None and silver is not None:
        total += _total_rows(silver, base.snapshot_id) - base_rows.num_rows
    return _State(int(n), int(wlsn), wts, rows, base_rows, only, total)


def _touched(
    con: duckdb.DuckDBPyConnection, silver: Table, key: list[str]
) -> tuple[list | None, str]:
    """The partitions of ``silver``'s current spec that the events in ``new_events`` touch,
    and a predicate selecting their rows; ``(None, "true")`` when the events must be applied
    to every row: no key, a partitioning that is not key ranges, or a TRUNCATE among them."""
    now = partitioning.current(silver)
    if not key or now is None or now.column != key[0]:
        return None, "true"
    if con.execute("SELECT count(*) FROM new_events WHERE _op = 't'").fetchone()[0]:
        return None, "true"
    column = quote_ident(key[0])
    keys = con.sql(f"SELECT DISTINCT {column} FROM new_events").to_arrow_table()  # noqa: S608
    values = partitioning.partition_values(silver, keys)
    only = values.unique().to_pylist() if values is not None else None
    where = partitioning.range_predicate(silver, only) if only is not None else None
    if where is None:
        return None, "true"
    return only, where


def _total_rows(silver: Table, snapshot_id: int) -> int:
    """The rows of snapshot ``snapshot_id`` of ``silver``, from its summary."""
    snap = silver.snapshot_by_id(snapshot_id)
    summary = snap.summary if snap is not None else None
    return int(summary.get("total-records", 0)) if summary is not None else 0


def has_bronze(settings: Settings, table: QualifiedName) -> bool:
    """Whether ``table`` has an Iceberg bronze table (anything landed)."""
    return maybe_table(open_catalog(settings), BRONZE, table) is not None


def compact_all(settings: Settings) -> list[Compacted]:
    """Compact every captured table that has Iceberg bronze."""
    return [compact(settings, qn) for qn in settings.captured]
