"""The Iceberg tables as DuckDB relations: what ``as_of`` and the DuckDB catalog file read.

Every relation is an ``iceberg_scan`` over a metadata location read from the catalog (never a
guessed newest metadata file: a killed commit leaves files no committed snapshot names), so it
is one committed state of the table; ``snapshot_id`` picks an older one.
"""

from __future__ import annotations

import json

import duckdb
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from pipelines.contract import ICEBERG_COLUMN_NAMES
from pipelines.iceberg.catalog import load_table
from pipelines.iceberg.published import KEY_PROPERTY
from pipelines.naming import QualifiedName, quote_ident, quote_literal

KAFKA_PARTITION = ICEBERG_COLUMN_NAMES["_partition"]


def maybe_table(catalog: SqlCatalog, layer: str, name: QualifiedName | str) -> Table | None:
    """The Iceberg table of ``name`` in ``layer``, or None before its first publish."""
    try:
        return load_table(catalog, layer, name)
    except NoSuchTableError:
        return None


def scan(table: Table, snapshot_id: int | None = None) -> str:
    """``iceberg_scan`` of ``table``'s current state (or of snapshot ``snapshot_id``)."""
    at = f", snapshot_from_id = {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"iceberg_scan({quote_literal(table.metadata_location)}{at})"


def bronze_events(bronze: Table, after_lsn: int | None = None) -> str:
    """Iceberg bronze as the compaction rules read it: the Kafka partition named
    ``_partition`` again (Iceberg engines reserve that name).

    With ``after_lsn`` only the rows that can be in a window after it
    (``rules.window_sql``: effective LSN > it, or incremental-snapshot rows at it): changes with
    ``_commit_lsn >= after_lsn`` and snapshot reads (no ``_commit_lsn``) with ``_lsn >
    after_lsn``. Plain comparisons, so DuckDB skips the data files whose ``_commit_lsn`` bounds
    lie below (Iceberg's column statistics); the rules still apply the exact window.
    """
    part = quote_ident(KAFKA_PARTITION)
    rows = f"SELECT * EXCLUDE ({part}), {part} AS _partition FROM {scan(bronze)}"  # noqa: S608
    if after_lsn is None:
        return f"({rows})"
    w = int(after_lsn)
    return (
        f"({rows} WHERE _commit_lsn >= {w} UNION ALL "
        f"{rows} WHERE _commit_lsn IS NULL AND _lsn > {w})"
    )


def columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Column names of ``relation``, in order."""
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]  # noqa: S608


def key_of(*tables: Table | None) -> list[str]:
    """The primary key recorded on the first of ``tables`` that has one (``[]``: no key)."""
    for t in tables:
        if t is not None and KEY_PROPERTY in t.properties:
            return list(json.loads(t.properties[KEY_PROPERTY]))
    return []
