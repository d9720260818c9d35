"""Maintenance on a clock: silver snapshot retention (and bronze small-file upkeep if offered).

Not assets: retention changes no table's current contents, only how far back time travel
reaches. The op calls the stage's plain function for each captured table.
"""

from collections.abc import Sequence

import dagster as dg
from dagster import OpExecutionContext

from pipelines.defs.keys import silver_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.naming import QualifiedName


def build_maintenance(
    tables: Sequence[QualifiedName],
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The ``lake_maintenance`` job and its nightly schedule."""

    @dg.op(
        description="Drop silver snapshots beyond the retention setting (current always kept); "
        "on the Iceberg lake, also delete old files no table metadata references."
    )
    def retain_snapshots(context: OpExecutionContext, changelake: ChangelakeResource) -> None:
        from pipelines.lakeformat import maintain

        done = maintain(changelake.settings())  # every silver table; never touches ``current``
        removed = done.removed
        for name, ids in removed.items():
            context.log.info("retention %s: removed %d snapshot(s)", name, len(ids))
        for report in done.orphans:  # Iceberg: files no metadata references
            if report.deleted:
                context.log.info(
                    "orphans %s: deleted %d file(s), %d bytes",
                    report.table,
                    report.deleted,
                    report.bytes,
                )
        for table in tables:
            ids = removed.get(str(table), [])
            context.log_event(
                dg.AssetObservation(
                    asset_key=silver_key(table),
                    metadata={
                        "retention_removed_snapshots": len(ids),
                        "retention_removed_ids": dg.MetadataValue.json(ids[:50]),
                    },
                )
            )

    @dg.job(name="lake_maintenance", description="Snapshot retention for every captured table.")
    def lake_maintenance() -> None:
        retain_snapshots()

    schedule = dg.ScheduleDefinition(
        name="nightly_lake_maintenance",
        job=lake_maintenance,
        cron_schedule="30 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return lake_maintenance, schedule
