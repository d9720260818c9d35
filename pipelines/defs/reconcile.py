"""Order-independent fingerprint of a table, computed the same way in PostgreSQL and DuckDB.

``count(*)`` and ``sum(first 60 bits of md5(canonical row text))`` in ONE aggregate query per
side. The canonical row text joins each compared column's text form with ``chr(31)``, NULL as
``\\N``. Only columns whose text rendering is identical in both engines are compared (integers,
text/varchar, boolean, date, uuid); the others (numeric scale, float digits, time zones,
json spacing, char padding...) are listed as skipped, never silently treated as equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import psycopg

from pipelines.config import Settings
from pipelines.lakeformat import live_silver
from pipelines.naming import QualifiedName, quote_ident, quote_literal

# PostgreSQL type name -> DuckDB types that render the same text for the same value.
SAME_TEXT = {
    "int2": {"SMALLINT", "INTEGER", "BIGINT"},
    "int4": {"INTEGER", "BIGINT"},
    "int8": {"BIGINT"},
    "text": {"VARCHAR"},
    "varchar": {"VARCHAR"},
    "bool": {"BOOLEAN"},
    "date": {"DATE"},
    "uuid": {"VARCHAR", "UUID"},
}


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    checksum: int


@dataclass(frozen=True)
class ColumnPlan:
    compared: list[str]
    skipped: dict[str, str]  # column -> why


@dataclass(frozen=True)
class Reconciled:
    plan: ColumnPlan
    postgres: Fingerprint
    silver: Fingerprint

    @property
    def equal(self) -> bool:
        return self.postgres == self.silver


def reconcile(settings: Settings, table: QualifiedName, conn: psycopg.Connection) -> Reconciled:
    """``table``'s live silver (either lake format) against PostgreSQL as ``conn`` sees it."""
    with live_silver(settings, table) as (con, silver):
        plan = plan_columns(pg_columns(conn, table), duck_columns(con, silver))
        pg = pg_fingerprint(conn, table, plan.compared)
        return Reconciled(plan, pg, duck_fingerprint(con, silver, plan.compared))


def pg_columns(conn: psycopg.Connection, table: QualifiedName) -> list[tuple[str, str]]:
    """(column, type name) of ``table`` in PostgreSQL, in table order."""
    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (table.sql,),
    ).fetchall()
    if not rows:
        raise LookupError(f"table {table} not found in PostgreSQL")
    return [(str(n), str(t)) for n, t in rows]


def duck_columns(con: duckdb.DuckDBPyConnection, relation: str | None) -> dict[str, str]:
    """column -> DuckDB type of the silver rows ``relation`` (``lakeformat.live_silver``)."""
    if relation is None:
        return {}
    described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()  # noqa: S608
    return {str(name): str(dtype) for name, dtype, *_ in described}


def plan_columns(pg: list[tuple[str, str]], duck: dict[str, str]) -> ColumnPlan:
    """Which columns the fingerprint covers, and why each other one is left out."""
    compared, skipped = [], {}
    for name, pg_type in pg:
        if name not in duck:
            skipped[name] = "not in silver"
        elif duck[name] not in SAME_TEXT.get(pg_type, set()):
            skipped[name] = f"{pg_type} vs {duck[name]}: text forms may differ"
        else:
            compared.append(name)
    return ColumnPlan(compared, skipped)


def _row_text(columns: Sequence[str], cast: str) -> str:
    parts = [f"coalesce(CAST({quote_ident(c)} AS {cast}), '\\N')" for c in columns]
    return f"concat_ws(chr(31), {', '.join(parts) or quote_literal('')})"


def pg_fingerprint(
    conn: psycopg.Connection, table: QualifiedName, columns: Sequence[str]
) -> Fingerprint:
    """Fingerprint in PostgreSQL (run inside the caller's REPEATABLE READ snapshot)."""
    h = f"('x' || substr(md5({_row_text(columns, 'text')}), 1, 15))::bit(60)::bigint"
    rows, checksum = conn.execute(
        f"SELECT count(*), coalesce(sum({h}), 0) FROM {table.sql}"  # noqa: S608 (quoted names)
    ).fetchone()
    return Fingerprint(int(rows), int(checksum))


def duck_fingerprint(
    con: duckdb.DuckDBPyConnection, relation: str | None, columns: Sequence[str]
) -> Fingerprint:
    """The same fingerprint over the silver rows ``relation`` (None: no silver yet)."""
    if relation is None:
        return Fingerprint(0, 0)
    h = f"('0x' || substr(md5({_row_text(columns, 'VARCHAR')}), 1, 15))::BIGINT"
    rows, checksum = con.execute(
        f"SELECT count(*), coalesce(sum({h}), 0) FROM {relation}"  # noqa: S608
    ).fetchone()
    return Fingerprint(int(rows), int(checksum))
