"""Existing rows always arrive: a table with rows added to a running pipeline is snapshotted
incrementally (Debezium signal) while a concurrent writer updates and deletes, and silver equals
PostgreSQL; ``changelake snapshot T --where`` re-reads exactly the rows the condition selects."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psycopg
import pytest
from silver_vs_pg import converge

from pipelines import silver
from pipelines.bronze.lander import land
from pipelines.config import Settings
from pipelines.shop.demo import wait_until_streamed
from pipelines.silver import bronze_io

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "changelake")

ROWS = 4000
DDL = f"""
CREATE SCHEMA IF NOT EXISTS incr_it;
CREATE TABLE incr_it.items (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO incr_it.items SELECT g, 0, 'seed' FROM generate_series(1, {ROWS}) g;
"""  # noqa: S608 - a constant


def _writer(dsn: str, stop: threading.Event, errors: list[BaseException]) -> None:
    rnd = random.Random(7)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                k = rnd.randint(1, ROWS)
                if rnd.random() < 0.2:
                    conn.execute("DELETE FROM incr_it.items WHERE id = %s", (k,))
                else:
                    conn.execute(
                        "UPDATE incr_it.items SET v = v + 1, note = 'w' WHERE id = %s", (k,)
                    )
                time.sleep(0.003)
    except BaseException as exc:  # noqa: BLE001 -- reported by the test thread
        errors.append(exc)


def _reads(settings: Settings, table) -> int:  # noqa: ANN001
    files = bronze_io.table_files(settings.lake_root, table)
    return duckdb.sql(
        f"SELECT count(*) FROM {bronze_io.parquet_source(files)} "  # noqa: S608
        "WHERE _op = 'r' AND _snapshot = 'incremental'"
    ).fetchall()[0][0]


def test_added_table_arrives_whole_and_snapshot_where_rereads_only_its_rows(
    stack, tmp_path: Path
) -> None:
    with stack.pg() as conn:
        conn.execute(DDL)
    errors: list[BaseException] = []
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(stack.settings.pg_dsn(), stop, errors))
    writer.start()
    try:
        (table,) = stack.capture("", "incr_it.items")  # re-registers: the table list grew
        time.sleep(10)  # the writer keeps changing rows while the chunks are read
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    fields = stack.settings.model_dump()
    fields.update(lake=tmp_path / "lake", tables=(str(table),))
    settings = Settings(**fields)
    n = converge(stack, settings, table)
    assert ROWS // 2 < n < ROWS  # the writer deleted some, most rows came from the snapshot
    first = _reads(settings, table)
    assert first > ROWS // 2

    with stack.pg() as conn:
        (wanted,) = conn.execute("SELECT count(*) FROM incr_it.items WHERE id <= 300").fetchone()
    cli = subprocess.run(  # noqa: S603
        [CLI, "snapshot", str(table), "--where", "id <= 300"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    deadline = time.monotonic() + 120
    while _reads(settings, table) < first + wanted and time.monotonic() < deadline:
        time.sleep(2)
        wait_until_streamed(settings)
        land(settings, until_caught_up=True)
    time.sleep(5)  # nothing more may come
    wait_until_streamed(settings)
    land(settings, until_caught_up=True)
    assert _reads(settings, table) == first + wanted
    assert converge(stack, settings, table) == n
    runs = silver.snapshot_runs(settings.lake_root, table)  # from the landed notifications
    assert [(r.filtered, r.initial) for r in runs] == [(False, True), (True, False)], runs
    assert all(r.finished is not None for r in runs), runs

    bad = subprocess.run(  # noqa: S603
        [CLI, "snapshot", str(table), "--where", "nope > 1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr
