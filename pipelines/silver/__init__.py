"""Silver: compaction of bronze change events into latest-row snapshots, and time travel.

Python API (the CLI, Dagster assets and tests call these):
``compact(settings, table, *, full=False) -> CompactionResult``, ``compact_all(settings)``,
``as_of(settings_or_lake, table, instant) -> pa.Table``, ``history(settings_or_lake, table, key)``,
``retain(settings_or_lake, table=None, *, keep_last=None, keep_newer_than=None)`` and
``write_catalog(lake)`` (the DuckDB catalog file ``<lake>/catalog.duckdb``).
"""

from pipelines.silver.catalog import catalog_path, write_catalog
from pipelines.silver.compaction import CompactionResult, compact, compact_all
from pipelines.silver.retention import retain
from pipelines.silver.snapshots import Manifest, current, list_snapshots
from pipelines.silver.timetravel import NoSilverData, as_of, history

__all__ = [
    "CompactionResult",
    "Manifest",
    "NoSilverData",
    "as_of",
    "catalog_path",
    "compact",
    "compact_all",
    "current",
    "history",
    "list_snapshots",
    "retain",
    "write_catalog",
]
