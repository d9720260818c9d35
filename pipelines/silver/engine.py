"""What every silver module shares: where a lake is, table names, and the DuckDB connection."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.naming import QualifiedName

LakeLike = Settings | Path | str


def lake_of(where: LakeLike) -> Path:
    """Accept Settings or a lake path, so tests and tools can point at any lake."""
    return where.lake_root if isinstance(where, Settings) else Path(where).resolve()


def as_table(table: QualifiedName | str) -> QualifiedName:
    return table if isinstance(table, QualifiedName) else QualifiedName.parse(table)


def connect() -> duckdb.DuckDBPyConnection:
    """A short-lived in-memory DuckDB, kept lean on a shared machine."""
    con = duckdb.connect()
    con.execute(
        "SET threads = 2; SET memory_limit = '3GB'; SET preserve_insertion_order = false; "
        "SET TimeZone = 'UTC'"
    )
    return con
