"""The one place silver reads bronze: complete-batch file lists, key columns, column names.

Everything goes through ``pipelines.bronze`` readers, so a half-written batch is never seen;
switching the source of events is an edit to this module only.  The one exception is
``live_source``, the glob the catalog's live views read: it sees every published bronze file,
including those of a batch whose other files are not written yet.  Those events are real
(committed, and they pass the same transaction cut); after a lander crash, recovery deletes
them and they land again, so a live view may briefly step back to an earlier consistent state.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.bronze import files as _bronze_files
from pipelines.bronze import key_columns as _bronze_key_columns
from pipelines.bronze.layout import table_dir as _bronze_table_dir
from pipelines.contract import META_COLUMNS
from pipelines.naming import QualifiedName, quote_literal


def table_dir(lake: Path, table: QualifiedName | str) -> Path:
    """Where bronze keeps ``table`` (a captured table or ``"_transactions"``)."""
    return _bronze_table_dir(lake, table)


def live_source(directory: Path) -> str:
    """A ``read_parquet`` over every published file under ``directory``, now and later (temp
    files are hidden ``.*.tmp`` and never match)."""
    glob = quote_literal(str(directory / "**" / "*.parquet"))
    return f"read_parquet({glob}, union_by_name = true, hive_partitioning = false)"


def table_files(lake: Path, table: QualifiedName) -> list[Path]:
    """Bronze files of ``table`` that belong to complete batches."""
    return _bronze_files(lake, table)


def transaction_files(lake: Path) -> list[Path]:
    """Bronze files of the transaction-metadata table (BEGIN/END), complete batches only."""
    return _bronze_files(lake, "_transactions")


def notification_files(lake: Path) -> list[Path]:
    """Bronze files of Debezium's notifications (snapshot progress), complete batches only."""
    return _bronze_files(lake, "_notifications")


def key_columns(lake: Path, table: QualifiedName) -> list[str]:
    """Primary-key columns from the newest file's ``changelake.key`` (``[]`` = no key)."""
    return _bronze_key_columns(lake, table)


def parquet_source(paths: list[Path] | list[str], *, filename: bool = False) -> str:
    """A ``read_parquet`` table function over ``paths``, columns unioned by name."""
    if not paths:
        raise ValueError("parquet_source needs at least one file")
    lits = ", ".join(quote_literal(str(p)) for p in paths)
    extra = ", filename = true" if filename else ""
    return f"read_parquet([{lits}], union_by_name = true, hive_partitioning = false{extra})"


def source_columns(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[str]:
    """Source (non-metadata) column names across ``paths``, in file order, unioned."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {parquet_source(paths)}").fetchall()  # noqa: S608
    return [r[0] for r in rows if r[0] not in META_COLUMNS]
