"""The changelake Dagster code location, one small module per concern.

``build_definitions(settings)`` assembles bronze (one multi-asset), silver (one asset per
captured table), the dbt marts, checks, the Kafka sensor, automation and maintenance. Every
asset calls one plain stage function (``bronze.land``, ``silver.compact``, ``dbt build``).
"""

from __future__ import annotations

import dagster as dg

from pipelines.config import Settings, get_settings
from pipelines.defs.bronze_assets import build_bronze_assets
from pipelines.defs.checks import build_checks
from pipelines.defs.dbt_assets import build_dbt_assets
from pipelines.defs.enrich_assets import build_enrich_asset, build_enrich_sensor
from pipelines.defs.iceberg_assets import build_iceberg_asset
from pipelines.defs.keys import BRONZE_GROUP
from pipelines.defs.resources import build_resources
from pipelines.defs.schedules import build_maintenance
from pipelines.defs.sensors import LANDING_TAG, build_automation_sensor, build_kafka_sensor
from pipelines.defs.silver_assets import build_silver_assets


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All definitions for ``settings`` (default: from the environment). No I/O to services."""
    settings = settings or get_settings()
    tables = settings.captured
    landing_job = dg.define_asset_job(
        "land_bronze",
        selection=dg.AssetSelection.groups(BRONZE_GROUP),
        tags={LANDING_TAG: "true"},
        description="One Kafka consumer pass landing new change events into bronze.",
    )
    maintenance_job, maintenance_schedule = build_maintenance(tables)
    return dg.Definitions(
        assets=[
            *build_bronze_assets(tables),
            *build_silver_assets(tables),
            *build_dbt_assets(settings),
            build_enrich_asset(tables),
            # publishing copies the Parquet lake into Iceberg: an Iceberg-stored lake is there
            *([build_iceberg_asset(tables)] if settings.lake_format == "parquet" else []),
        ],
        asset_checks=build_checks(tables),
        jobs=[landing_job, maintenance_job],
        sensors=[
            build_kafka_sensor(tables, landing_job),
            build_automation_sensor(),
            build_enrich_sensor(),
        ],
        schedules=[maintenance_schedule],
        resources=build_resources(settings),
        # One process per run: each step would otherwise re-import dagster, dbt and the code
        # location (~10 s each on a small machine) for work that takes DuckDB well under that.
        executor=dg.in_process_executor,
    )
