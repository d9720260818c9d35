"""What P2's run reads, per lake format (``bench.freshness``): the service's lake, the catalog
file the prober opens, the relation a query of the measured table reads, its bronze rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.bronze import files
from pipelines.config import Settings
from pipelines.iceberg import engine
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.duckdb_catalog import catalog_path
from pipelines.iceberg.names import BRONZE, SILVER, table_name
from pipelines.iceberg.sources import maybe_table, scan
from pipelines.naming import QualifiedName, quote_ident
from pipelines.silver.bronze_io import parquet_source

TABLE = QualifiedName("bench", "fresh")  # its own small topic (see bench.stack)


@dataclass(frozen=True)
class Lake:
    """One run's lake: where ``changelake run`` lands and what the prober reads."""

    root: Path
    format: str = "parquet"

    @property
    def settings(self) -> Settings:
        return Settings(_env_file=None, lake=self.root, lake_format=self.format)

    @property
    def catalog(self) -> Path:
        if self.format == "iceberg":
            return catalog_path(self.settings)
        return self.root / "catalog.duckdb"

    @property
    def view(self) -> str:
        """The relation a query of the table reads: the live view, or Iceberg silver's view."""
        if self.format == "iceberg":
            return f"{quote_ident(SILVER)}.{quote_ident(table_name(TABLE))}"
        return TABLE.sql

    def connect(self) -> duckdb.DuckDBPyConnection:
        """The catalog file, read-only, as an analyst opens it."""
        if self.format == "iceberg":
            return engine.connect(self.settings, str(self.catalog), read_only=True)
        return duckdb.connect(str(self.catalog), read_only=True)

    def bronze(self) -> str | None:
        """A relation over the table's bronze rows (None: nothing landed yet)."""
        if self.format == "iceberg":
            table = maybe_table(open_catalog(self.settings), BRONZE, TABLE)
            return None if table is None else scan(table)
        paths = files(self.root, TABLE)
        return parquet_source(paths) if paths else None

    def engine(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection that reads the lake's bronze."""
        return engine.connect(self.settings) if self.format == "iceberg" else duckdb.connect()
