"""Silver: compaction of bronze change events into latest-row snapshots, and time travel.

Python API (the CLI, Dagster assets and tests call these):
``compact(settings, table, *, full=False) -> CompactionResult``, ``compact_all(settings)``,
``as_of(settings_or_lake, table, instant) -> pa.Table``, ``history(settings_or_lake, table, key)``,
``retain(settings_or_lake, table=None, *, keep_last=None, keep_newer_than=None)`` and
``write_catalog(lake)`` (the DuckDB catalog file ``<lake>/catalog.duckdb``);
``snapshotting_at(lake, table, instant)``: the incremental snapshot still bringing the table's
existing rows in at that instant, if any (``as_of`` warns ``SnapshotInProgress`` then).
"""

from pipelines.silver.catalog import catalog_path, write_catalog
from pipelines.silver.compaction import CompactionResult, compact, compact_all
from pipelines.silver.retention import retain
from pipelines.silver.snapshot_progress import SnapshotRun, snapshot_runs, snapshotting_at
from pipelines.silver.snapshots import Manifest, current, list_snapshots
from pipelines.silver.timetravel import NoSilverData, SnapshotInProgress, as_of, history

__all__ = [
    "CompactionResult",
    "Manifest",
    "NoSilverData",
    "SnapshotInProgress",
    "SnapshotRun",
    "as_of",
    "catalog_path",
    "compact",
    "compact_all",
    "current",
    "history",
    "list_snapshots",
    "retain",
    "snapshot_runs",
    "snapshotting_at",
    "write_catalog",
]
