"""Was an incremental snapshot bringing a table's existing rows in at an instant?

While Debezium reads a table added to a running pipeline chunk by chunk, silver holds only the
rows read so far: time travel to an instant inside that window would return a partial table
as if complete. The landed notifications (bronze ``_notifications``, Debezium's sink channel)
tell when each incremental snapshot of a table started and finished:

- started: the ``STARTED`` notification whose ``data_collections`` names the table;
- finished: the first ``TABLE_SCAN_COMPLETED`` of that table (``scanned_collection``), or the
  snapshot's ``COMPLETED`` / ``ABORTED`` (an ``ABORTED`` that lists other tables only does not
  finish it), whichever comes first. Not finished yet: still running.

Only a snapshot that brings the table's existing rows in for the first time makes the table
partial (``initial``). The rule: the snapshot is unfiltered (changelake marks ``--where``
snapshots in the signal id, see ``pipelines.stack.signal``), no earlier unfiltered snapshot of
the table finished with its rows in (a ``SUCCEEDED`` or ``EMPTY`` table scan, or ``COMPLETED``;
not ``ABORTED`` nor a failed scan such as ``UNKNOWN_SCHEMA``), and bronze holds no read of the connector's
initial (blocking) snapshot for the table. A filtered re-snapshot, a re-snapshot of a table
whose rows already arrived, or the snapshot after an earlier one finished, only restate rows
silver already has. A table created empty while captured and snapshotted later in full is
reported as partial during that snapshot: a spurious note, never a silent partial table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.naming import QualifiedName
from pipelines.silver import bronze_io
from pipelines.stack.signal import FILTERED_ID_PREFIX

INCREMENTAL = "Incremental Snapshot"
_ENDS = ("COMPLETED", "ABORTED")
# outcomes after which the table's rows are in (a scan that failed, e.g. UNKNOWN_SCHEMA when
# the connector did not know the table yet, or SQL_EXCEPTION, brought nothing in)
_LOADED = ("TABLE_SCAN_COMPLETED:SUCCEEDED", "TABLE_SCAN_COMPLETED:EMPTY", "COMPLETED")


@dataclass(frozen=True)
class SnapshotRun:
    """One incremental snapshot of one table, from the landed notifications."""

    id: str
    table: QualifiedName
    started: datetime
    finished: datetime | None  # None: not finished yet
    outcome: str | None  # e.g. "TABLE_SCAN_COMPLETED:SUCCEEDED", "COMPLETED", "ABORTED"
    filtered: bool  # a --where snapshot (changelake's signal id says so)
    initial: bool = False  # brings the table's existing rows in for the first time

    def running_at(self, ts: datetime) -> bool:
        return self.started <= ts and (self.finished is None or ts < self.finished)

    def note(self, instant: datetime) -> str:
        """The one-line warning the CLI prints."""
        done = self.finished.isoformat() if self.finished else "not yet"
        return (
            f"{self.table} was still being snapshotted at {instant.isoformat()} (incremental "
            f"snapshot started {self.started.isoformat()}, finished {done}): rows that existed "
            "before it may be missing"
        )


def _names(table: QualifiedName) -> set[str]:
    return {table.data_collection, table.include_list_regex, str(table)}


def _collections(value: str | None) -> list[str]:
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def _rows(lake: Path) -> list[tuple]:
    paths = bronze_io.notification_files(lake)
    if not paths:
        return []
    src = bronze_io.parquet_source(paths)
    sql = f"""
        SELECT id, type, data_collections, scanned_collection, status,
               coalesce(ts, _kafka_ts) AS at_ts
        FROM {src} WHERE aggregate_type = $agg ORDER BY at_ts, _partition, _offset
    """  # noqa: S608 - a quoted file list
    with duckdb.connect() as con:
        return con.execute(sql, {"agg": INCREMENTAL}).fetchall()


def _initial_reads(lake: Path, table: QualifiedName) -> bool:
    """Does bronze hold a read of the connector's initial (blocking) snapshot of ``table``?"""
    paths = bronze_io.table_files(lake, table)
    if not paths:
        return False
    sql = f"""
        SELECT count(*) FROM {bronze_io.parquet_source(paths)}
        WHERE _op = 'r' AND coalesce(_snapshot, 'false') NOT IN ('false', 'incremental')
    """  # noqa: S608 - a quoted file list
    with duckdb.connect() as con:
        (n,) = con.execute(sql).fetchone()
    return n > 0


def snapshot_runs(lake: Path, table: QualifiedName) -> list[SnapshotRun]:
    """Every incremental snapshot of ``table`` in the landed notifications, oldest first."""
    return _mark_initial(Path(lake), table, _raw_runs(Path(lake), table))


def running_now(lake: Path, table: QualifiedName) -> SnapshotRun | None:
    """The newest snapshot of ``table`` not finished yet (``changelake status``), if any; its
    ``initial`` is judged only then (it reads the table's bronze)."""
    raw = _raw_runs(Path(lake), table)
    if all(r.finished is not None for r in raw):
        return None
    runs = _mark_initial(Path(lake), table, raw)
    return next(r for r in reversed(runs) if r.finished is None)


def _raw_runs(lake: Path, table: QualifiedName) -> list[SnapshotRun]:
    names = _names(table)
    started: dict[str, datetime] = {}
    ended: dict[str, tuple[datetime, str]] = {}
    for ident, kind, colls, scanned, status, at in _rows(lake):
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        mine = names.intersection(_collections(colls))
        if kind == "STARTED" and mine:
            started.setdefault(ident, at)
        elif ident not in started or ident in ended:
            continue
        elif kind == "TABLE_SCAN_COMPLETED" and scanned in names:
            ended[ident] = (at, f"TABLE_SCAN_COMPLETED:{status}" if status else kind)
        elif kind in _ENDS and (mine or not colls):
            ended[ident] = (at, kind)
    runs = []
    for ident, at in sorted(started.items(), key=lambda kv: kv[1]):
        end = ended.get(ident)
        runs.append(
            SnapshotRun(
                ident,
                table,
                at,
                end[0] if end else None,
                end[1] if end else None,
                ident.startswith(FILTERED_ID_PREFIX),
            )
        )
    return runs


def _mark_initial(lake: Path, table: QualifiedName, runs: list[SnapshotRun]) -> list[SnapshotRun]:
    if not any(not r.filtered for r in runs) or _initial_reads(lake, table):
        return runs
    out, loaded = [], False
    for r in runs:
        initial = not r.filtered and not loaded
        if initial and r.finished is not None and r.outcome in _LOADED:
            loaded = True
        out.append(
            SnapshotRun(r.id, r.table, r.started, r.finished, r.outcome, r.filtered, initial)
        )
    return out


def snapshotting_at(lake: Path, table: QualifiedName, instant: datetime) -> SnapshotRun | None:
    """The snapshot bringing ``table``'s existing rows in at ``instant``, if one was running."""
    ts = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    for r in snapshot_runs(lake, table):
        if r.initial and r.running_at(ts):
            return r
    return None
