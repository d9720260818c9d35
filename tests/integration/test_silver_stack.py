"""Silver against the real stack: PostgreSQL -> Debezium -> Kafka -> bronze lander -> silver.

A concurrent workload (several psycopg connections in threads, multi-statement transactions that
move balance between two captured tables, change keys, insert and delete, and leave a large
TOASTed column unchanged) runs while the pipeline lands and compacts in a loop. Then:
silver equals PostgreSQL row for row (EXCEPT both ways empty), and ``as_of`` at instants inside
the burst always keeps the cross-table sum invariant (no half transaction is ever visible).
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest

from pipelines import silver
from pipelines.bronze.lander import land
from pipelines.config import Settings
from pipelines.shop.demo import wait_until_streamed

pytestmark = pytest.mark.integration

ROWS, START, THREADS, TXS = 12, 1000, 4, 30
TOTAL = 2 * ROWS * START
DDL = """
CREATE SCHEMA IF NOT EXISTS silver_it;
CREATE TABLE silver_it.acct_a (id int PRIMARY KEY, bal bigint NOT NULL, doc text);
CREATE TABLE silver_it.acct_b (id int PRIMARY KEY, bal bigint NOT NULL, doc text);
"""
BIG_DOC = "(SELECT string_agg(md5(random()::text || g), '') FROM generate_series(1, 200) g)"


def _one_tx(conn: psycopg.Connection, rnd: random.Random, tid: int, n: int) -> None:
    """One transaction that keeps sum(acct_a.bal) + sum(acct_b.bal) constant."""
    src, dst = rnd.sample(["silver_it.acct_a", "silver_it.acct_b"], 2)
    kind = rnd.random()
    with conn.transaction():
        row = conn.execute(
            f"SELECT id, bal FROM {src} ORDER BY random() LIMIT 1 FOR UPDATE"  # noqa: S608
        ).fetchone()
        if row is None:
            return
        sid, bal = row
        amount = rnd.randint(0, max(bal, 0))
        if kind < 0.1:  # key change of the source row (delete + create in Debezium)
            conn.execute(
                f"UPDATE {src} SET id = %s WHERE id = %s",  # noqa: S608
                (1_000_000 + 1000 * tid + n, sid),
            )
        elif kind < 0.2:  # move the whole balance into a new row, delete the old one
            conn.execute(f"DELETE FROM {src} WHERE id = %s", (sid,))  # noqa: S608
            conn.execute(
                f"INSERT INTO {dst} (id, bal, doc) VALUES (%s, %s, 'new')",  # noqa: S608
                (2_000_000 + 1000 * tid + n, bal),
            )
        else:  # transfer: doc is untouched, so Debezium sends the unchanged-TOAST placeholder
            conn.execute(
                f"UPDATE {src} SET bal = bal - %s WHERE id = %s",  # noqa: S608
                (amount, sid),
            )
            got = conn.execute(
                f"UPDATE {dst} SET bal = bal + %s WHERE id = (SELECT id FROM {dst} "  # noqa: S608
                "ORDER BY random() LIMIT 1) RETURNING id",
                (amount,),
            ).fetchone()
            if got is None:
                raise psycopg.errors.SerializationFailure("no destination row")


def _worker(dsn: str, tid: int, errors: list[BaseException]) -> None:
    rnd = random.Random(tid)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for n in range(TXS):
                for _attempt in range(20):
                    try:
                        _one_tx(conn, rnd, tid, n)
                        break
                    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                        time.sleep(0.01)
                time.sleep(rnd.random() * 0.02)
    except BaseException as exc:  # noqa: BLE001 -- reported by the test thread
        errors.append(exc)


def _sum(lake: Path, table: str, instant) -> int:  # noqa: ANN001
    t = silver.as_of(lake, table, instant)
    return sum(v for v in t.column("bal").to_pylist() if v is not None)


def test_silver_equals_postgres_and_as_of_is_transaction_consistent(stack, tmp_path: Path):
    names = stack.capture(DDL, "silver_it.acct_a", "silver_it.acct_b")
    fields = stack.settings.model_dump()
    fields.update(lake=tmp_path / "lake", tables=tuple(str(n) for n in names))
    settings = Settings(**fields)
    lake = settings.lake_root
    with stack.pg() as conn, conn.transaction():  # one seed transaction: the invariant holds
        for t in names:
            conn.execute(
                f"INSERT INTO {t.sql} (id, bal, doc) SELECT g, {START}, {BIG_DOC} "  # noqa: S608
                f"FROM generate_series(1, {ROWS}) g"
            )
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=(settings.pg_dsn(), i, errors))
        for i in range(THREADS)
    ]
    for th in threads:
        th.start()
    rounds = 0
    while any(th.is_alive() for th in threads) or rounds == 0:  # pipeline runs during the burst
        land(settings, until_caught_up=True)
        silver.compact_all(settings)
        rounds += 1
        marks = [silver.current(lake, t) for t in names]
        if all(marks):  # both tables at one instant: the invariant must hold mid-burst
            instant = min(m.watermark_time for m in marks)
            assert sum(_sum(lake, t, instant) for t in names) == TOTAL
    for th in threads:
        th.join()
    assert not errors, errors
    wait_until_streamed(settings)
    land(settings, until_caught_up=True)
    results = silver.compact_all(settings)
    assert {r.table for r in results} == {str(n) for n in names}

    con = duckdb.connect()
    for t in names:
        with stack.pg() as conn:
            rows = conn.execute(f"SELECT id, bal, doc FROM {t.sql}").fetchall()  # noqa: S608
        pg = pa.table(
            {"id": [r[0] for r in rows], "bal": [r[1] for r in rows], "doc": [r[2] for r in rows]}
        )
        con.register("pg", pg)
        con.register("sv", silver.as_of(lake, t, "9999-01-01T00:00:00+00:00"))
        cur = lake / "silver" / t.path / "current" / "part-0.parquet"
        for a, b in (("pg", "sv"), ("sv", "pg"), ("pg", f"read_parquet('{cur}')")):
            diff = con.execute(
                f"SELECT id::BIGINT, bal::BIGINT, md5(doc) FROM {a} "  # noqa: S608
                f"EXCEPT SELECT id::BIGINT, bal::BIGINT, md5(doc) FROM {b} ORDER BY 1"
            ).fetchall()
            assert diff == [], f"{t}: {a} EXCEPT {b}: {diff}"
        assert con.execute("SELECT count(*) FROM sv").fetchall() == [(len(rows),)]
        con.unregister("pg")
        con.unregister("sv")
    # the placeholders really occurred and were resolved: bronze has unavailable doc columns
    from pipelines.silver import bronze_io

    placeholders = con.execute(
        f"SELECT count(*) FROM {bronze_io.parquet_source(bronze_io.table_files(lake, names[0]))} "  # noqa: S608
        "WHERE list_contains(_unavailable, 'doc')"
    ).fetchall()[0][0]
    assert placeholders > 0

    # as_of at instants inside the burst: never half a transaction across the two tables
    ts = con.execute(
        f"SELECT DISTINCT _source_ts FROM {bronze_io.parquet_source(bronze_io.table_files(lake, names[1]))} "  # noqa: S608
        "ORDER BY 1"
    ).fetchall()
    picks = [r[0] for r in ts[1:][:: max(len(ts) // 15, 1)]]  # after the seed transaction
    for instant in picks:
        for probe in (instant, instant - timedelta(microseconds=1)):
            assert sum(_sum(lake, t, probe) for t in names) == TOTAL, probe
    assert rounds >= 1
