"""The DuckDB file over the Iceberg tables, ``<lake>/iceberg/catalog.duckdb``: what analysts and
dbt (target ``iceberg``) open read-only to query the published lake.

DuckDB schemas ``bronze``, ``silver`` and ``quarantine`` mirror the Iceberg namespaces, and
hold one view per Iceberg table under its Iceberg name (``silver.shop__orders``: the names
Spark and Trino use). Each view reads the metadata the table had when the file was written,
so it is one committed state; every publish writes the file again (under a temporary name,
renamed into place, so an open reader is not disturbed). Per silver table with a bronze table
there are two table macros, over the same SQL as ``as_of`` / ``history``
(``pipelines.silver.rules``):

- ``silver."as_of_<name>"(ts)``: the table as committed at ``ts``, from the newest Iceberg
  silver snapshot at or before ``ts`` plus Iceberg bronze after its watermark;
- ``silver."history_<name>"(key_1, ...)``: every version of one row.

Reading the file needs DuckDB's iceberg extension (``engine.connect(settings, path,
read_only=True)`` loads it; dbt's profile loads it through ``pipelines.dbt_iceberg``). On S3
the reader also creates the S3 secret; the file holds none.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from pipelines.bronze.layout import TRANSACTIONS
from pipelines.config import Settings
from pipelines.contract import META_COLUMNS
from pipelines.iceberg import engine
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.names import BRONZE, NAMESPACES, SILVER, from_table_name
from pipelines.iceberg.sources import bronze_events, columns, key_of, maybe_table, scan
from pipelines.iceberg.timetravel import watermarked
from pipelines.naming import quote_ident
from pipelines.silver import rules
from pipelines.silver.catalog import replace_duckdb_file, time_travel_macros


def catalog_path(settings: Settings) -> Path:
    return settings.lake_root / "iceberg" / "catalog.duckdb"


def write_iceberg_catalog(settings: Settings) -> Path:
    """(Re)write the file for every table in the Iceberg catalog now."""
    catalog = open_catalog(settings)
    return replace_duckdb_file(
        catalog_path(settings),
        lambda con: statements(con, catalog),
        connect=lambda path: engine.writing(settings, path),
    )


def statements(con: duckdb.DuckDBPyConnection, catalog: SqlCatalog) -> list[str]:
    """The DDL: schemas, one view per table, the silver tables' macros."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ns)}" for ns in NAMESPACES]
    tx = maybe_table(catalog, BRONZE, TRANSACTIONS)
    for ns in NAMESPACES:
        for ident in sorted(catalog.list_tables(ns)):
            table = catalog.load_table(ident)
            view = f"{quote_ident(ns)}.{quote_ident(ident[-1])}"
            out.append(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan(table)}")  # noqa: S608
            if ns == SILVER:
                out += _macros(con, catalog, table, ident[-1], tx)
    return out


def _bases(silver: Table) -> list[tuple[str, int | None, str]]:
    """(watermark time, watermark LSN, relation) per silver snapshot, oldest first."""
    return [
        (b.watermark_time.isoformat(), b.watermark_lsn, scan(silver, b.snapshot_id))
        for b in watermarked(silver)
    ]


def _macros(
    con: duckdb.DuckDBPyConnection,
    catalog: SqlCatalog,
    silver: Table,
    name: str,
    tx: Table | None,
) -> list[str]:
    qn = from_table_name(name)
    bronze = maybe_table(catalog, BRONZE, qn)
    if bronze is None:
        return []
    source = bronze_events(bronze)
    bronze_cols = [c for c in columns(con, source) if c not in META_COLUMNS]
    cols = [c for c in columns(con, scan(silver)) if c not in rules.KEEP_META]
    cols += [c for c in bronze_cols if c not in cols]
    key = key_of(silver, bronze)
    common = {
        "tx_source": scan(tx) if tx is not None else None,
        "data_collection": qn.data_collection,
        "absent": [c for c in cols if c not in bronze_cols],
    }
    return time_travel_macros(quote_ident(SILVER), name, source, cols, key, _bases(silver), common)
