"""Shared by the incremental-snapshot integration tests: silver (as of the far future) against
PostgreSQL for an ``(id, v, note)`` table, and landing until they agree."""

from __future__ import annotations

import time

import duckdb
import pyarrow as pa

from pipelines import silver
from pipelines.bronze.lander import land
from pipelines.config import Settings
from pipelines.shop.demo import wait_until_streamed


def diff(stack, settings: Settings, table) -> tuple[int, list, list]:  # noqa: ANN001
    """(PostgreSQL row count, rows only in PostgreSQL, rows only in silver)."""
    with stack.pg() as conn:
        rows = conn.execute(f"SELECT id, v, note FROM {table.sql}").fetchall()  # noqa: S608
    pg = pa.table({k: [r[i] for r in rows] for i, k in enumerate(("id", "v", "note"))})
    con = duckdb.connect()
    con.register("pg", pg)
    con.register("sv", silver.as_of(settings.lake_root, table, "9999-01-01T00:00:00+00:00"))
    a = con.execute("SELECT * FROM pg EXCEPT SELECT id, v, note FROM sv ORDER BY 1").fetchall()
    b = con.execute("SELECT id, v, note FROM sv EXCEPT SELECT * FROM pg ORDER BY 1").fetchall()
    return len(rows), a, b


def converge(stack, settings: Settings, table, timeout: float = 180) -> int:  # noqa: ANN001
    """Land and compact until silver equals PostgreSQL (the snapshot runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        wait_until_streamed(settings)
        land(settings, until_caught_up=True)
        silver.compact(settings, table, catalog=False)
        n, a, b = diff(stack, settings, table)
        if not a and not b:
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"{table}: PG EXCEPT silver {a[:10]}; silver EXCEPT PG {b[:10]}")
        time.sleep(2)
