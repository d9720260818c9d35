"""Read bronze the way every downstream stage must: complete batches only, union by name.

Silver, dbt and checks call these instead of globbing, so a half-written batch (the lander
was killed between two files) is never seen, and files written before and after a schema
change read together (added columns are NULL in old files; widened types read across).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow.parquet as pq

from pipelines.bronze.layout import (
    BRONZE,
    DATE_PARTITION,
    NOTIFICATIONS,
    TRANSACTIONS,
    LakeListing,
    list_lake,
    table_dir,
)
from pipelines.naming import QualifiedName

BronzeTable = QualifiedName | Literal["_transactions", "_notifications"]


class NoBronzeData(FileNotFoundError):
    """The table has no landed bronze file yet."""


def files(lake: Path, table: BronzeTable, listing: LakeListing | None = None) -> list[Path]:
    """Parquet files of ``table`` that belong to complete batches, in offset order.

    Judged from one walk of the lake: a batch counts only if that walk saw all n of its
    files, so a batch completing while we list is either fully in or fully out. Pass
    ``listing`` to judge several tables from the same walk.
    """
    lake = Path(lake)
    root = table_dir(lake, table)
    chosen = [
        f
        for fs in (listing or list_lake(lake)).complete.values()
        for f in fs
        if f.path.suffix == ".parquet" and f.path.parent.parent == root  # root/_commit_date=*/
    ]
    chosen.sort(key=lambda f: (f.batch.topic, f.batch.partition, f.batch.first, f.k))
    return [f.path for f in chosen]


def scan(con: duckdb.DuckDBPyConnection, lake: Path, table: BronzeTable) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over every complete bronze file of ``table`` (with ``_commit_date``).

    Raises ``NoBronzeData`` when nothing has landed for the table, because an empty relation
    would have no columns to select from.
    """
    paths = files(lake, table)
    if not paths:
        raise NoBronzeData(f"no landed bronze files for {table} under {lake}")
    return con.read_parquet([str(p) for p in paths], union_by_name=True, hive_partitioning=True)


def key_columns(lake: Path, table: QualifiedName) -> list[str]:
    """Primary-key column names from the newest landed file's ``changelake.key`` metadata."""
    for path in reversed(files(lake, table)):
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(b"changelake.key")
        if raw is not None:
            return list(json.loads(raw))
    raise NoBronzeData(f"no landed bronze file of {table} carries changelake.key")


def landed_offsets(lake: Path, listing: LakeListing | None = None) -> dict[tuple[str, int], int]:
    """Highest landed offset per (topic, partition), from complete batches' file names."""
    listing = listing or list_lake(Path(lake))
    out: dict[tuple[str, int], int] = {}
    for b in listing.complete:
        key = (b.topic, b.partition)
        if b.last > out.get(key, -1):
            out[key] = b.last
    return out


def bronze_tables(lake: Path) -> list[QualifiedName | str]:
    """Every bronze table that has a directory in the lake (for checks and the CLI)."""
    from pipelines.naming import from_path_segment

    root = Path(lake) / BRONZE
    out: list[QualifiedName | str] = []
    if not root.is_dir():
        return out
    for schema_dir in sorted(root.iterdir()):
        if not schema_dir.is_dir():
            continue
        if schema_dir.name in (TRANSACTIONS, NOTIFICATIONS):
            out.append(schema_dir.name)  # a schema of that name shares the directory
        for t in sorted(schema_dir.iterdir()):
            if t.is_dir() and not t.name.startswith(f"{DATE_PARTITION}="):
                out.append(
                    QualifiedName(from_path_segment(schema_dir.name), from_path_segment(t.name))
                )
    return out
