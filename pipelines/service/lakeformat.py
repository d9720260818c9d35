"""What the service's compact stage does in each lake format (``CHANGELAKE_LAKE_FORMAT``).

Parquet: ``silver.compact`` over the lake's files, then the lake's DuckDB catalog file.
Iceberg: ``iceberg.compaction`` over the Iceberg tables the lander commits to, then the DuckDB
file over those tables (``iceberg.duckdb_catalog``).
"""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.naming import QualifiedName


def compact_table(settings: Settings, table: str):  # noqa: ANN201
    """One table's compaction: a ``silver.CompactionResult`` or an ``iceberg.compaction.
    Compacted`` (both have ``changed``); LookupError when the table has no bronze yet."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg import compaction

        qn = QualifiedName.parse(table)
        if not compaction.has_bronze(settings, qn):
            raise LookupError(f"no Iceberg bronze for {qn} yet")
        return compaction.compact(settings, qn)
    from pipelines.silver import compact

    return compact(settings.lake_root, table, catalog=False)


def write_catalog(settings: Settings) -> None:
    """Rewrite the DuckDB catalog file of the lake's format."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.duckdb_catalog import write_iceberg_catalog

        write_iceberg_catalog(settings)
        return
    from pipelines.silver import write_catalog as write_lake_catalog

    write_lake_catalog(settings.lake_root)
