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

import pyarrow as pa

from pipelines.config import Settings
from pipelines.iceberg import engine
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.expiry import expire_appended
from pipelines.iceberg.names import BRONZE, SILVER
from pipelines.iceberg.published import Published
from pipelines.iceberg.silver_publish import (
    PARTITION_BYTES,
    commit_state,
    iceberg_snapshot_for,
    published_snapshot,
)
from pipelines.iceberg.sources import key_of, maybe_table, scan
from pipelines.iceberg.timetravel import replay_sql, watermarked
from pipelines.naming import QualifiedName
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

    @property
    def changed(self) -> bool:
        return self.snapshot_id is not None


def compact(
    settings: Settings, table: QualifiedName, *, partition_bytes: int | None = None
) -> Compacted:
    """Compact ``table``'s Iceberg bronze into its Iceberg silver (see the module)."""
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
    with engine.connect(settings) as con:
        base_rows = None  # the start state, read once: compaction's base and the diff's
        if base is not None and silver is not None:
            base_rows = con.sql(f"SELECT * FROM {scan(silver, base.snapshot_id)}").to_arrow_table()  # noqa: S608
            con.register("base_state", base_rows)
        start = (silver, base)
        given = "base_state" if base_rows is not None else None
        sql = replay_sql(con, catalog, table, start, bronze, "new_events", base_relation=given)
        n, wlsn, wts = con.execute(
            "SELECT count(*), max(_commit_lsn), max(_source_ts) FROM new_events"
        ).fetchone()
        if n == 0:
            out.seconds = time.monotonic() - t0
            return out
        rows = to_iceberg(con.sql(sql).to_arrow_table(), time_as_micros=micros)
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
        rows=rows.num_rows,
        events_applied=int(n),
        full=base is None,
    )
    report = Published(SILVER, str(table))

    def state(snapshot_id: str) -> pa.Table | None:
        """A published state, the diff's base: read as the new state was (DuckDB, then
        ``to_iceberg``), so equal rows hash equal (pyiceberg's own reader types differ)."""
        sid = iceberg_snapshot_for(silver, snapshot_id) if silver is not None else None
        if sid is None:
            return None
        if base is not None and sid == base.snapshot_id and base_rows is not None:
            return to_iceberg(base_rows, time_as_micros=micros)
        with engine.connect(settings) as con:
            old = con.sql(f"SELECT * FROM {scan(silver, sid)}").to_arrow_table()  # noqa: S608
        return to_iceberg(old, time_as_micros=micros)

    silver = commit_state(
        catalog, silver, table, rows, m, state, report, partition_bytes or PARTITION_BYTES
    )
    expired, report.files_deleted = expire_appended(silver, settings.silver_keep_snapshots)
    report.expired = len(expired)
    out.snapshot_id = m.snapshot_id if report.snapshots else None
    out.events_applied, out.rows = int(n), rows.num_rows
    out.watermark_lsn, out.watermark_ts = m.watermark_lsn, m.watermark_ts
    out.published, out.seconds = report, time.monotonic() - t0
    return out


def has_bronze(settings: Settings, table: QualifiedName) -> bool:
    """Whether ``table`` has an Iceberg bronze table (anything landed)."""
    return maybe_table(open_catalog(settings), BRONZE, table) is not None


def compact_all(settings: Settings) -> list[Compacted]:
    """Compact every captured table that has Iceberg bronze."""
    return [compact(settings, qn) for qn in settings.captured]
