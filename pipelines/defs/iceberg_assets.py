"""The lake's Iceberg tables as one Dagster asset, downstream of every silver table.

The body calls ``pipelines.iceberg.publish.publish_lake`` (``changelake publish`` and ``run``'s
publish stage call it too). No automation condition: it is materialised on demand, in a
whole-graph run, or kept fresh by ``changelake run`` with ``CHANGELAKE_RUN_PUBLISH_EVERY_S``.
"""

from collections.abc import Sequence

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.defs.keys import ICEBERG_GROUP, ICEBERG_KEY, bronze_key, silver_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.naming import QualifiedName


def publish_metadata(report) -> dict[str, object]:  # noqa: ANN001 (a PublishReport)
    per_table = {
        f"{t.layer}.{t.table}": {
            "rows": t.rows,
            "snapshots": len(t.snapshots),
            "bytes": t.bytes_written,
            "rewrote": t.rewritten(),
        }
        for t in report.tables
    }
    changes = [f"{t.layer}.{t.table}: {c}" for t in report.tables for c in t.changes]
    return {
        "rows_published": dg.MetadataValue.int(report.rows),
        "iceberg_snapshots": dg.MetadataValue.int(report.snapshots),
        "bytes_written": dg.MetadataValue.int(report.bytes_written),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "tables": dg.MetadataValue.json(per_table),
        "schema_changes": dg.MetadataValue.json(changes),
    }


def build_iceberg_asset(tables: Sequence[QualifiedName]) -> dg.AssetsDefinition:
    spec = dg.AssetSpec(
        key=ICEBERG_KEY,
        deps=[*(bronze_key(t) for t in tables), *(silver_key(t) for t in tables)],
        group_name=ICEBERG_GROUP,
        kinds={"iceberg"},
        description="Bronze batches and silver snapshots published to the lake's Iceberg "
        "catalog, exactly once (Spark, Trino and DuckDB read them).",
    )

    @dg.multi_asset(name="iceberg_publish", specs=[spec])
    def _publish(context: AssetExecutionContext, changelake: ChangelakeResource):
        from pipelines.iceberg.publish import publish_lake

        settings = changelake.settings()
        report = publish_lake(settings, tables=list(tables), progress=context.log.info)
        return dg.MaterializeResult(metadata=publish_metadata(report))

    return _publish
