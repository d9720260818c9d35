"""Hostile identifiers (issue 8, item 5): a schema, tables and columns with quotes, dots,
spaces, unicode, path tricks and SQL keywords are captured, landed, compacted and queryable
(silver ``current``, ``as_of``, ``history``, the DuckDB catalog) with no injection through SQL
or paths: every file the pipeline writes stays inside the lake root. It runs on both lake
formats: the Parquet lake's files and the Iceberg tables (whose names escape such identifiers,
``pipelines.iceberg.names``), each in its own PostgreSQL schema.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from faultkit import (
    bronze_rows,
    files_outside,
    lake_settings,
    record_figures,
    silver_vs_pg,
    wait_streamed,
)

from pipelines.iceberg import engine
from pipelines.iceberg.names import SILVER, table_name
from pipelines.lakeformat import as_of, catalog_file, compact_table, history
from pipelines.landing import land
from pipelines.naming import QualifiedName, quote_ident, quote_literal

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCHEMAS = {"parquet": 'we"ird.sch ema', "iceberg": 'we"ird.ice berg'}
COLUMNS = ("id", '"quoted"', "a.b", "naïve col", "order", 'mid"quote')
# Debezium unquotes a column name that starts and ends with '"' (pgoutput relation decoding),
# so PostgreSQL's "quoted" arrives -- and lives in the lake -- as quoted. Observed, asserted.
LAKE_NAME = {'"quoted"': "quoted"}


def _tables(schema: str) -> tuple[QualifiedName, ...]:
    return (
        QualifiedName(schema, "select"),
        QualifiedName(schema, "../../x'); DROP TABLE faults_victim; --"),
    )


def _catalog_names(lake_format: str, t: QualifiedName) -> tuple[str, str]:
    """The DuckDB catalog file's view and ``as_of_`` macro of ``t``: under the captured
    table's own schema in the Parquet lake's file, under its Iceberg name in ``silver`` in
    the Iceberg one's."""
    if lake_format == "iceberg":
        name, schema = table_name(t), quote_ident(SILVER)
    else:
        name, schema = t.table, quote_ident(t.schema)
    return f"{schema}.{quote_ident(name)}", f"{schema}.{quote_ident('as_of_' + name)}"


def _ddl(schema: str) -> str:
    s = quote_ident(schema)
    tables = _tables(schema)
    cols = (
        f"{quote_ident('id')} int PRIMARY KEY, {quote_ident(COLUMNS[1])} text, "
        f"{quote_ident('a.b')} int, {quote_ident('naïve col')} text, {quote_ident('order')} int, "
        f"{quote_ident(COLUMNS[5])} text"
    )
    body = ";".join(f"DROP TABLE IF EXISTS {t.sql}; CREATE TABLE {t.sql} ({cols})" for t in tables)
    return (
        f"CREATE SCHEMA IF NOT EXISTS {s}; {body};"
        "DROP TABLE IF EXISTS public.faults_victim; CREATE TABLE public.faults_victim (x int);"
    )


def _insert(conn, t: QualifiedName, lo: int, hi: int) -> None:  # noqa: ANN001
    cols = ", ".join(quote_ident(c) for c in COLUMNS)
    conn.execute(
        f"INSERT INTO {t.sql} ({cols}) SELECT g, 'q''' || g || '\"', g * 10, "  # noqa: S608
        "'naïve ' || g, -g, 'm' || g FROM generate_series(%s::int, %s::int) g",
        (lo, hi),
    )


@pytest.mark.parametrize("lake_format", sorted(SCHEMAS))
def test_hostile_identifiers_round_trip_without_injection(stack, tmp_path, lake_format) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    tables = _tables(SCHEMAS[lake_format])
    stack.capture(_ddl(SCHEMAS[lake_format]), *(str(t) for t in tables))
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, list(tables), lake_format=lake_format)
    with stack.pg() as conn:
        for t in tables:
            _insert(conn, t, 1, 20)
        time.sleep(1.1)
        mid = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(1.1)
        for t in tables:
            q = quote_ident
            conn.execute(
                f"UPDATE {t.sql} SET {q('naïve col')} = 'changed', {q('order')} = 0 "  # noqa: S608
                f"WHERE {q('id')} <= 5"
            )
            conn.execute(f"DELETE FROM {t.sql} WHERE {q('a.b')} >= 180")  # noqa: S608
        wait_streamed(conn, settings.slot_name)

    result = land(settings)
    assert result.quarantined == 0, result
    for t in tables:
        assert bronze_rows(settings, t, ["_offset"]).num_rows, f"nothing landed for {t}"
        compact_table(settings, str(t), catalog=True)

    with stack.pg() as conn:
        victim = conn.execute("SELECT to_regclass('public.faults_victim')").fetchone()[0]
        assert victim is not None, "an identifier was executed as SQL"
        diffs = {str(t): silver_vs_pg(conn, settings, t, ["id"], LAKE_NAME) for t in tables}
    for name, d in diffs.items():
        assert not d.only_pg and not d.only_silver and d.pg_rows == 17, (name, d)

    for t in tables:
        past = as_of(settings, t, mid)
        assert past.num_rows == 20
        rows = {r["id"]: r for r in past.to_pylist()}
        assert rows[3]["naïve col"] == "naïve 3" and rows[3]["quoted"] == "q'3\""
        assert rows[19]["a.b"] == 190 and rows[19]["order"] == -19
        assert rows[19]['mid"quote'] == "m19" and '"quoted"' not in rows[19]
        versions = history(settings, t, [3]).to_pylist()
        assert [v["_op"] for v in versions] == ["c", "u"]
        assert versions[-1]["naïve col"] == "changed"

    with engine.connect(settings, str(catalog_file(settings)), read_only=True) as con:
        for t in tables:
            view, macro = _catalog_names(lake_format, t)
            n = con.execute(
                f"SELECT count(*), sum({quote_ident('a.b')}) FROM {view}"  # noqa: S608
            ).fetchone()
            assert n == (17, sum(i * 10 for i in range(1, 18)))
            ts = quote_literal(mid.isoformat())
            n_then = con.execute(
                f"SELECT count(*) FROM {macro}(CAST({ts} AS TIMESTAMPTZ))"  # noqa: S608
            ).fetchone()[0]
            assert n_then == 20

    outside = files_outside(tmp_path, lake)
    assert not outside, f"files written outside the lake: {outside}"
    for p in lake.rglob("*"):
        assert ".." not in p.relative_to(lake).parts
        assert lake.resolve() in p.resolve().parents or p.resolve() == lake.resolve()

    record_figures(
        "hostile_identifiers" if lake_format == "parquet" else f"hostile_identifiers_{lake_format}",
        {
            "tables": [str(t) for t in tables],
            "columns": list(COLUMNS),
            "renamed_by_debezium": LAKE_NAME,
            "events_landed": result.events,
            "silver_rows": {k: d.silver_rows for k, d in diffs.items()},
            "as_of_checked_at": mid.isoformat() if isinstance(mid, datetime) else str(mid),
            "files_outside_lake": 0,
            "seconds": round(time.monotonic() - t0, 1),
        },
    )
