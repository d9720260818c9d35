"""Asset keys for captured tables, in one place so assets, checks, sensors and dbt agree.

Keys are ``[layer, schema, table]``, e.g. ``["silver", "shop", "orders"]``. Dagster derives
op/output names from keys and those must match ``[A-Za-z0-9_]+``, so the parts are the two
halves of ``QualifiedName.asset_name`` (ordinary names unchanged, any other name escaped
whole), which keeps distinct tables distinct.
"""

from __future__ import annotations

import dagster as dg

from pipelines.naming import QualifiedName

BRONZE_GROUP = "bronze"
SILVER_GROUP = "silver"
MARTS_GROUP = "marts"
ICEBERG_GROUP = "iceberg"
ICEBERG_KEY = dg.AssetKey(["iceberg", "lake"])  # every table published to Iceberg, one asset
WAREHOUSE_POOL = "duckdb_warehouse"  # one writer at a time for the DuckDB warehouse file
KAFKA_POOL = "kafka_landing"  # one bronze lander at a time (it owns the consumer group)


def key_parts(table: QualifiedName) -> list[str]:
    """``[schema_part, table_part]``: ``asset_name`` split on its unambiguous ``__``."""
    schema_part, table_part = table.asset_name.split("__", 1)
    return [schema_part, table_part]


def bronze_key(table: QualifiedName) -> dg.AssetKey:
    """The bronze (append-only event store) asset of ``table``."""
    return dg.AssetKey(["bronze", *key_parts(table)])


def silver_key(table: QualifiedName) -> dg.AssetKey:
    """The silver (latest-row snapshot) asset of ``table``."""
    return dg.AssetKey(["silver", *key_parts(table)])
