"""Bronze: ONE multi-asset lands every captured table in one Kafka consumer pass.

The asset body calls ``pipelines.bronze.land`` (the same function the CLI calls) and turns
its ``LandingResult`` into per-table metadata (``stagemeta``, shared with ``runless``).
Subsettable: selecting some bronze assets lands only those tables.
"""

from collections.abc import Iterator, Sequence

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.defs.keys import BRONZE_GROUP, KAFKA_POOL, bronze_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.defs.stagemeta import bronze_metadata
from pipelines.naming import QualifiedName


def build_bronze_assets(tables: Sequence[QualifiedName]) -> list[dg.AssetsDefinition]:
    """The bronze multi-asset over ``tables`` (empty list when nothing is captured)."""
    if not tables:
        return []
    by_key = {bronze_key(t): t for t in tables}
    specs = [
        dg.AssetSpec(
            key=key,
            group_name=BRONZE_GROUP,
            kinds={"kafka", "parquet"},
            description=f"Every Debezium change event of {t}, typed, append-only, exactly once.",
            metadata={"source_table": str(t), "lake_path": f"bronze/{t.path}"},
        )
        for key, t in by_key.items()
    ]

    @dg.multi_asset(
        name="bronze_landing",
        specs=specs,
        can_subset=True,
        pool=KAFKA_POOL,
        description="One Kafka consumer pass landing the selected tables into bronze Parquet.",
    )
    def bronze_landing(
        context: AssetExecutionContext, changelake: ChangelakeResource
    ) -> Iterator[dg.MaterializeResult]:
        from pipelines.landing import land

        settings = changelake.settings()
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        everything = len(selected) == len(by_key)
        result = land(
            settings,
            tables=None if everything else selected,
            until_caught_up=True,
            progress=context.log.info,  # the demo relays these lines
        )
        context.log.info("landed %d events in %.1fs", result.events, result.seconds)
        for table in selected:
            yield dg.MaterializeResult(
                asset_key=bronze_key(table), metadata=bronze_metadata(settings, table, result)
            )

    return [bronze_landing]
