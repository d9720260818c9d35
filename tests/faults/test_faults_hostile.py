"""Hostile identifiers (issue 8, item 5): a schema, tables and columns with quotes, dots,
spaces, unicode, path tricks and SQL keywords are captured, landed, compacted and queryable
(silver ``current``, ``as_of``, ``history``, the DuckDB catalog) with no injection through SQL
or paths: every file the pipeline writes stays inside the lake root.
"""

from __future__ import annotations

import time
from datetime import datetime

import duckdb
import pytest
from faultkit import files_outside, lake_settings, record_figures, silver_vs_pg, wait_streamed

from pipelines.bronze import files
from pipelines.bronze.lander import land
from pipelines.naming import QualifiedName, quote_ident, quote_literal
from pipelines.silver import as_of, catalog_path, compact, history

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCHEMA = 'we"ird.sch ema'
TABLES = (
    QualifiedName(SCHEMA, "select"),
    QualifiedName(SCHEMA, "../../x'); DROP TABLE faults_victim; --"),
)
COLUMNS = ("id", '"quoted"', "a.b", "naïve col", "order", 'mid"quote')
# Debezium unquotes a column name that starts and ends with '"' (pgoutput relation decoding),
# so PostgreSQL's "quoted" arrives -- and lives in the lake -- as quoted. Observed, asserted.
LAKE_NAME = {'"quoted"': "quoted"}


def _ddl() -> str:
    s = quote_ident(SCHEMA)
    cols = (
        f"{quote_ident('id')} int PRIMARY KEY, {quote_ident(COLUMNS[1])} text, "
        f"{quote_ident('a.b')} int, {quote_ident('naïve col')} text, {quote_ident('order')} int, "
        f"{quote_ident(COLUMNS[5])} text"
    )
    body = ";".join(f"DROP TABLE IF EXISTS {t.sql}; CREATE TABLE {t.sql} ({cols})" for t in TABLES)
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


def test_hostile_identifiers_round_trip_without_injection(stack, tmp_path) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    stack.capture(_ddl(), *(str(t) for t in TABLES))
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, list(TABLES))
    with stack.pg() as conn:
        for t in TABLES:
            _insert(conn, t, 1, 20)
        time.sleep(1.1)
        mid = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(1.1)
        for t in TABLES:
            q = quote_ident
            conn.execute(
                f"UPDATE {t.sql} SET {q('naïve col')} = 'changed', {q('order')} = 0 "  # noqa: S608
                f"WHERE {q('id')} <= 5"
            )
            conn.execute(f"DELETE FROM {t.sql} WHERE {q('a.b')} >= 180")  # noqa: S608
        wait_streamed(conn, settings.slot_name)

    result = land(settings)
    assert result.quarantined == 0, result
    for t in TABLES:
        assert files(lake, t), f"nothing landed for {t}"
        compact(lake, t)

    with stack.pg() as conn:
        victim = conn.execute("SELECT to_regclass('public.faults_victim')").fetchone()[0]
        assert victim is not None, "an identifier was executed as SQL"
        diffs = {str(t): silver_vs_pg(conn, lake, t, ["id"], LAKE_NAME) for t in TABLES}
    for name, d in diffs.items():
        assert not d.only_pg and not d.only_silver and d.pg_rows == 17, (name, d)

    for t in TABLES:
        past = as_of(lake, t, mid)
        assert past.num_rows == 20
        rows = {r["id"]: r for r in past.to_pylist()}
        assert rows[3]["naïve col"] == "naïve 3" and rows[3]["quoted"] == "q'3\""
        assert rows[19]["a.b"] == 190 and rows[19]["order"] == -19
        assert rows[19]['mid"quote'] == "m19" and '"quoted"' not in rows[19]
        versions = history(lake, t, {"id": 3}).to_pylist()
        assert [v["_op"] for v in versions] == ["c", "u"]
        assert versions[-1]["naïve col"] == "changed"

    cat = catalog_path(lake)
    with duckdb.connect(str(cat), read_only=True) as con:
        for t in TABLES:
            n = con.execute(
                f"SELECT count(*), sum({quote_ident('a.b')}) FROM {t.sql}"  # noqa: S608
            ).fetchone()
            assert n == (17, sum(i * 10 for i in range(1, 18)))
            ts = quote_literal(mid.isoformat())
            name = quote_ident("as_of_" + t.table)
            n_then = con.execute(
                f"SELECT count(*) FROM {quote_ident(t.schema)}.{name}(CAST({ts} AS TIMESTAMPTZ))"  # noqa: S608
            ).fetchone()[0]
            assert n_then == 20

    outside = files_outside(tmp_path, lake)
    assert not outside, f"files written outside the lake: {outside}"
    for p in lake.rglob("*"):
        assert ".." not in p.relative_to(lake).parts
        assert lake.resolve() in p.resolve().parents or p.resolve() == lake.resolve()

    record_figures(
        "hostile_identifiers",
        {
            "tables": [str(t) for t in TABLES],
            "columns": list(COLUMNS),
            "renamed_by_debezium": LAKE_NAME,
            "events_landed": result.events,
            "silver_rows": {k: d.silver_rows for k, d in diffs.items()},
            "as_of_checked_at": mid.isoformat() if isinstance(mid, datetime) else str(mid),
            "files_outside_lake": 0,
            "seconds": round(time.monotonic() - t0, 1),
        },
    )
