"""Compaction, the catalog file and the status view in each lake format
(``CHANGELAKE_LAKE_FORMAT``), for the service's compact stage, the Dagster silver assets and
``changelake status`` (the CLI's ``compact`` prints per format).

Parquet: ``silver.compact`` over the lake's files, then the lake's DuckDB catalog file.
Iceberg: ``iceberg.compaction`` over the Iceberg tables the lander commits to, then the DuckDB
file over those tables (``iceberg.duckdb_catalog``).
"""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.naming import QualifiedName


def compact_table(settings: Settings, table: str, *, catalog: bool = False):  # noqa: ANN201
    """One table's compaction: a ``silver.CompactionResult`` or an ``iceberg.compaction.
    Compacted`` (both have ``changed``); LookupError when the table has no bronze yet.
    ``catalog``: rewrite the format's DuckDB catalog file when a snapshot changed."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg import compaction

        qn = QualifiedName.parse(table)
        if not compaction.has_bronze(settings, qn):
            raise LookupError(f"no Iceberg bronze for {qn} yet")
        result = compaction.compact(settings, qn)
        if catalog and result.changed:
            write_catalog(settings)
        return result
    from pipelines.silver import compact

    return compact(settings.lake_root, table, catalog=catalog)


def write_catalog(settings: Settings) -> None:
    """Rewrite the DuckDB catalog file of the lake's format."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.duckdb_catalog import write_iceberg_catalog

        write_iceberg_catalog(settings)
        return
    from pipelines.silver import write_catalog as write_lake_catalog

    write_lake_catalog(settings.lake_root)


def lake_status(settings: Settings, end_offsets):  # noqa: ANN001, ANN201
    """``changelake status``'s lake view (a ``lakestatus.LakeStatus``) in the lake's format;
    ``end_offsets`` from Kafka, None when it is down."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.lake_status import iceberg_lake_status

        return iceberg_lake_status(settings, end_offsets)
    from pipelines.lakestatus import lake_status as parquet_lake_status

    return parquet_lake_status(settings, end_offsets)
