"""Compaction: previous snapshot + bronze events after its watermark -> a new silver snapshot.

Incremental by default: only bronze files not fully consumed by the parent are read, and only
their events after the parent's watermark apply, so the cost follows the change volume (plus one
pass over the parent snapshot). ``full=True`` rebuilds from all of bronze; both give the same rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from pipelines.config import Settings
from pipelines.naming import QualifiedName, quote_literal
from pipelines.silver import bronze_io, plan, rules, snapshots
from pipelines.silver.catalog import write_catalog
from pipelines.silver.engine import LakeLike, as_table, connect, lake_of

# Snapshot files: snappy writes a 100k-row snapshot in ~60 % of zstd's CPU (measured 0.065 vs
# 0.11 s) for ~40 % larger files; every compaction rewrites the snapshot, so this is on the
# freshness path.
SNAPSHOT_COMPRESSION = "snappy"


@dataclass(frozen=True)
class CompactionResult:
    """What a compaction did (Dagster asset metadata, CLI output)."""

    table: str
    snapshot_id: str | None
    parent: str | None
    changed: bool
    full: bool
    rows: int
    events_applied: int
    files_read: int
    watermark_lsn: int | None
    watermark_ts: datetime | None
    duration_s: float

    def as_metadata(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["watermark_ts"] = self.watermark_ts.isoformat() if self.watermark_ts else None
        return d


def _unchanged(
    qn: QualifiedName, parent: snapshots.Manifest | None, full: bool, t0: float, files_read: int = 0
) -> CompactionResult:
    return CompactionResult(
        str(qn),
        parent.snapshot_id if parent else None,
        parent.parent if parent else None,
        False,
        full,
        parent.rows if parent else 0,
        0,
        files_read,
        parent.watermark_lsn if parent else None,
        parent.watermark_time if parent else None,
        time.monotonic() - t0,
    )


def compact(
    settings: LakeLike, table: QualifiedName | str, *, full: bool = False, catalog: bool = True
) -> CompactionResult:
    """Compact one table; writes a new snapshot only when there are new complete events."""
    t0 = time.monotonic()
    lake, qn = lake_of(settings), as_table(table)
    all_files = bronze_io.table_files(lake, qn)
    with snapshots.table_lock(lake, qn):
        parent = snapshots.current(lake, qn)
        base = None if full else parent
        done = set(base.consumed) if base else set()
        todo = [p for p in all_files if str(p.relative_to(lake)) not in done]
        if not todo:
            return _unchanged(qn, parent, full, t0)
        con = connect()
        try:
            result = _compact_files(con, lake, qn, todo, base, parent, full)
        finally:
            con.close()
    if catalog and result.changed:
        write_catalog(lake)
    return CompactionResult(**{**result.__dict__, "duration_s": time.monotonic() - t0})


def _compact_files(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    qn: QualifiedName,
    todo: list[Path],
    base: snapshots.Manifest | None,
    parent: snapshots.Manifest | None,
    full: bool,
) -> CompactionResult:
    key = bronze_io.key_columns(lake, qn)
    cols = new_cols = bronze_io.source_columns(con, todo)
    base_rel = None
    if base:
        base_cols = [c["name"] for c in base.schema if c["name"] not in rules.KEEP_META]
        cols = base_cols + [c for c in cols if c not in base_cols]
        base_rel = bronze_io.parquet_source(
            [snapshots.snapshot_dir(lake, qn, base.snapshot_id) / "part-0.parquet"]
        )
    tx = bronze_io.transaction_files(lake)
    plan.materialize_events(
        con,
        "new_events",
        source=bronze_io.parquet_source(todo),
        columns=cols,
        tx_source=bronze_io.parquet_source(tx) if tx else None,
        data_collection=qn.data_collection,
        after_lsn=str(base.watermark_lsn) if base and base.watermark_lsn is not None else None,
        absent=[c for c in cols if c not in new_cols],  # dropped before these files
        since=base.watermark_time if base else None,
    )
    n, wlsn, wts = con.execute(
        "SELECT count(*), max(_commit_lsn), max(_source_ts) FROM new_events"
    ).fetchone()
    if n == 0:
        return _unchanged(qn, parent, full, 0.0, len(todo))
    if base and base.watermark_lsn is not None and base.watermark_lsn > wlsn:
        wlsn = base.watermark_lsn
    if base and base.watermark_time and base.watermark_time > wts:
        wts = base.watermark_time
    consumed = _fully_consumed(con, lake, todo, wlsn)
    now = snapshots.utcnow()
    sid = snapshots.new_snapshot_id(parent, now)
    staging = snapshots.staging_dir(lake, qn, sid)
    out = staging / "part-0.parquet"
    meta = quote_literal(json.dumps(key))
    body = plan.compact_table_sql(con, "new_events", cols, key, base_rel)
    con.execute(
        f"COPY ({body}) TO {quote_literal(str(out))} (FORMAT parquet, "
        f"COMPRESSION {SNAPSHOT_COMPRESSION}, "
        f"KV_METADATA {{'changelake.key': {meta}, 'changelake.table': {quote_literal(str(qn))}}})"
    )
    pf = pq.ParquetFile(out)
    manifest = snapshots.Manifest(
        snapshot_id=sid,
        table=str(qn),
        key=key,
        created_at=now.isoformat(),
        parent=parent.snapshot_id if parent else None,
        watermark_lsn=int(wlsn),
        watermark_ts=wts.isoformat(),
        rows=pf.metadata.num_rows,
        events_applied=int(n),
        full=base is None,
        schema=[{"name": f.name, "type": str(f.type)} for f in pf.schema_arrow],
        files_read=[str(p.relative_to(lake)) for p in todo],
        consumed=sorted((set(base.consumed) if base else set()) | consumed),
    )
    snapshots.publish(lake, qn, staging, manifest)
    return CompactionResult(
        str(qn),
        sid,
        manifest.parent,
        True,
        full,
        manifest.rows,
        int(n),
        len(todo),
        int(wlsn),
        wts,
        0.0,
    )


def _fully_consumed(
    con: duckdb.DuckDBPyConnection, lake: Path, todo: list[Path], wlsn: int
) -> set[str]:
    """Files whose every event is at or below the new watermark: never read again."""
    src = bronze_io.parquet_source(todo, filename=True)
    rows = con.execute(
        f"SELECT filename FROM {src} GROUP BY filename "  # noqa: S608
        f"HAVING max(coalesce(_commit_lsn, _lsn)) <= {int(wlsn)}"
    ).fetchall()
    return {str(Path(r[0]).relative_to(lake)) for r in rows}


def compact_all(settings: Settings, *, full: bool = False) -> list[CompactionResult]:
    """Compact every captured table that has bronze data, then refresh the catalog once."""
    lake = lake_of(settings)
    results = [
        compact(lake, qn, full=full, catalog=False)
        for qn in settings.captured
        if bronze_io.table_files(lake, qn)
    ]
    if any(r.changed for r in results):
        write_catalog(lake)
    return results
