"""Captured tables created after the pipeline started are streamed from their first row.

1. The README's "Using it" commands, in their order, as real CLI processes on a fresh home:
   ``up`` (no shop tables exist yet), ``shop create``, ``workload``, ``land``, ``compact``;
   then silver equals PostgreSQL for every shop table.
2. While ``land --follow`` runs, a captured table is created and filled in ONE transaction;
   every row arrives in bronze and silver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg
import pytest

from pipelines import silver
from pipelines.config import DEMO_TABLES, Settings
from pipelines.defs.reconcile import reconcile
from pipelines.naming import QualifiedName
from pipelines.shop.demo import wait_until_streamed
from pipelines.shop.migrate import SHOP_TABLES
from pipelines.silver.bronze_io import parquet_source, table_files
from pipelines.stack import late_tables
from tests.conftest import SHARED_JAR_CACHE, free_ports

pytestmark = pytest.mark.integration

CLI = [str(Path(sys.executable).parent / "changelake")]
LATE = QualifiedName("late_it", "born_filled")
LATE_KEYLESS = QualifiedName("late_it", "born_keyless")  # key-less events: needs a delete topic
LATE_ROWS = 2000


def _cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    proc = subprocess.run(  # noqa: S603 - our own CLI
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"changelake {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _silver_equals_postgres(settings: Settings, table: QualifiedName) -> None:
    """Row count and the reconciliation fingerprint (the Dagster check's) agree, and silver
    compares at least the key column."""
    with psycopg.connect(settings.pg_dsn()) as conn:
        done = reconcile(settings, table, conn)
    assert done.plan.compared, f"{table}: no comparable column ({done.plan.skipped})"
    assert done.equal, f"{table}: silver != PostgreSQL"


@pytest.fixture
def fresh_home() -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="changelake-readme-"))
    home.chmod(0o755)
    (home / "jars").symlink_to(SHARED_JAR_CACHE, target_is_directory=True)
    pg, kafka, controller, connect = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    env |= {
        "CHANGELAKE_HOME": str(home),
        "CHANGELAKE_PG_PORT": str(pg),
        "CHANGELAKE_KAFKA_PORT": str(kafka),
        "CHANGELAKE_KAFKA_CONTROLLER_PORT": str(controller),
        "CHANGELAKE_CONNECT_PORT": str(connect),
    }
    try:
        yield env
    finally:
        subprocess.run([*CLI, "down", "--purge"], env=env, capture_output=True, timeout=300)  # noqa: S603
        (home / "jars").unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", str(home)], check=False)  # noqa: S603, S607


def test_readme_using_it_captures_every_workload_transaction(fresh_home: dict[str, str]):
    env = fresh_home
    _cli(env, "up")
    _cli(env, "status")
    _cli(env, "shop", "create")
    out = _cli(env, "workload", "--rate", "50", "--duration", "15", "--black-friday")
    assert " transactions," in out and not out.startswith("0 transactions"), out
    _cli(env, "land")
    _cli(env, "compact")
    settings = Settings(
        home=Path(env["CHANGELAKE_HOME"]),
        pg_port=int(env["CHANGELAKE_PG_PORT"]),
        kafka_port=int(env["CHANGELAKE_KAFKA_PORT"]),
        connect_port=int(env["CHANGELAKE_CONNECT_PORT"]),
        tables=DEMO_TABLES,  # what the CLI used: this process's env belongs to the session stack
    )
    assert set(SHOP_TABLES) <= set(settings.captured)
    with psycopg.connect(settings.pg_dsn()) as conn:
        orders = conn.execute("SELECT count(*) FROM shop.orders").fetchone()[0]
    assert orders > 0
    for t in SHOP_TABLES:
        _silver_equals_postgres(settings, t)
    assert late_tables.findings(settings) == []


@pytest.mark.parametrize(
    ("table", "key"), [(LATE, " PRIMARY KEY"), (LATE_KEYLESS, "")], ids=["keyed", "keyless"]
)
def test_table_created_and_filled_in_one_transaction_arrives_whole(
    stack, tmp_path: Path, table: QualifiedName, key: str
):
    stack.capture("", str(table))  # named before it exists: only the captured list learns it
    settings = stack.settings
    env = os.environ | {"CHANGELAKE_LAKE": str(tmp_path / "lake")}
    lander = subprocess.Popen(  # noqa: S603
        [*CLI, "land", "--follow"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(5)  # the lander is up and following before the table is born
        with stack.pg() as conn, conn.transaction():
            conn.execute("CREATE SCHEMA IF NOT EXISTS late_it")
            conn.execute(f"CREATE TABLE {table.sql} (id int{key}, v text NOT NULL)")
            conn.execute(
                f"INSERT INTO {table.sql} SELECT g, md5(g::text) "  # noqa: S608
                f"FROM generate_series(1, {LATE_ROWS}) g"
            )
        assert late_tables.unpublished(settings) == []
        wait_until_streamed(settings)
        lake = Settings(**(settings.model_dump() | {"lake": tmp_path / "lake"}))
        deadline, landed = time.monotonic() + 240, 0
        while time.monotonic() < deadline and landed < LATE_ROWS:
            files = table_files(lake.lake_root, table)
            if files:
                landed = duckdb.sql(f"SELECT count(*) FROM {parquet_source(files)}").fetchone()[0]  # noqa: S608
            time.sleep(2)
        assert landed == LATE_ROWS, f"bronze holds {landed} of {LATE_ROWS} rows"
    finally:
        lander.send_signal(signal.SIGINT)
        try:
            lander.wait(timeout=60)
        except subprocess.TimeoutExpired:
            lander.kill()
            lander.wait()
    silver.compact(lake, table, catalog=False)
    _silver_equals_postgres(lake, table)


def test_without_the_trigger_status_says_the_table_is_not_captured(stack, tmp_path: Path):
    """The trigger disabled (as on a database where it could not be installed) and a table
    named in CHANGELAKE_TABLES that nothing published: ``findings`` and ``changelake status``
    say so loudly; ``up`` (re-register) with the trigger back clears both."""
    from pipelines.stack import postgres
    from pipelines.stack.layout import Layout

    orphan = QualifiedName("late_it", "orphan")
    settings = stack.settings
    disable = f'ALTER EVENT TRIGGER "{late_tables.EVENT_TRIGGER}"'
    with postgres.admin_connect(settings, Layout.of(settings), settings.pg_database) as admin:
        admin.execute(f"{disable} DISABLE")
        try:
            with stack.pg() as conn:
                conn.execute("CREATE SCHEMA IF NOT EXISTS late_it")
                conn.execute(f"CREATE TABLE {orphan.sql} (id int PRIMARY KEY)")
                conn.execute(f"INSERT INTO {orphan.sql} SELECT generate_series(1, 50)")  # noqa: S608
            os.environ["CHANGELAKE_TABLES"] = ",".join(
                str(q) for q in dict.fromkeys((*settings.captured, orphan))
            )
            settings = stack.settings
            assert late_tables.unpublished(settings) == [orphan]
            found = [str(f) for f in late_tables.findings(settings)]
            assert any(f"{orphan} is NOT in publication" in f for f in found), found
            assert any("is disabled" in f for f in found), found
            status = subprocess.run(  # noqa: S603
                [*CLI, "status"], env=os.environ.copy(), capture_output=True, text=True, timeout=120
            )
            assert status.returncode == 1, status.stdout
            assert f"CHANGES NOT CAPTURED: captured table {orphan} is NOT" in status.stdout, (
                status.stdout[-3000:]
            )
        finally:
            admin.execute(f"{disable} ENABLE")
    stack.capture("", str(orphan))  # what `changelake up` does: re-register, Debezium adds it
    assert late_tables.findings(stack.settings) == []
    # the rows written while nothing published the table arrive by an incremental snapshot
    from pipelines.bronze.lander import land

    lake = Settings(**(stack.settings.model_dump() | {"lake": tmp_path / "lake"}))
    deadline, landed = time.monotonic() + 180, 0
    while time.monotonic() < deadline and landed < 50:
        land(lake, tables=[orphan], until_caught_up=True)
        files = table_files(lake.lake_root, orphan)
        if files:
            query = f"SELECT count(DISTINCT id) FROM {parquet_source(files)} WHERE _op = 'r'"  # noqa: S608
            landed = duckdb.sql(query).fetchone()[0]
        time.sleep(2)
    assert landed == 50, f"{landed} of the 50 rows written while unpublished were snapshotted"
