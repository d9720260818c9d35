"""Silver: one asset per captured table, compacting its bronze events into a latest-row snapshot.

The body calls ``pipelines.lakeformat.compact_table`` (``silver.compact``, or the Iceberg
compaction with ``CHANGELAKE_LAKE_FORMAT=iceberg``: the CLI's and the service's functions too);
Dagster only adds the metadata and the automation: ``eager()`` re-compacts whenever bronze of
that table lands.
"""

from collections.abc import Sequence

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.defs.keys import SILVER_GROUP, bronze_key, silver_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.defs.stagemeta import silver_metadata
from pipelines.naming import QualifiedName


def _silver_asset(table: QualifiedName) -> dg.AssetsDefinition:
    spec = dg.AssetSpec(
        key=silver_key(table),
        deps=[bronze_key(table)],
        group_name=SILVER_GROUP,
        kinds={"parquet", "duckdb"},
        description=f"Latest version of every row of {table}, with time travel over snapshots.",
        metadata={"source_table": str(table), "lake_path": f"silver/{table.path}/current"},
        automation_condition=dg.AutomationCondition.eager(),
    )

    @dg.multi_asset(name=f"silver_{table.asset_name}", specs=[spec])
    def _compact(context: AssetExecutionContext, changelake: ChangelakeResource):
        from pipelines.lakeformat import compact_table

        settings = changelake.settings()
        result = compact_table(settings, str(table), catalog=True)
        context.log.info("compacted %s: %s", table, result)
        return dg.MaterializeResult(metadata=silver_metadata(settings, table, result))

    return _compact


def build_silver_assets(tables: Sequence[QualifiedName]) -> list[dg.AssetsDefinition]:
    """One silver asset per captured table, downstream of its bronze asset."""
    return [_silver_asset(t) for t in tables]
