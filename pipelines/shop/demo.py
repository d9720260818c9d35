"""``changelake demo``: the whole pipeline on the demo shop, end to end, in a few minutes.

up -> create the shop -> capture it -> workload with a Black-Friday burst -> materialise
(bronze -> silver -> dbt marts) -> answers from the star schema, with the inventory value at
the Black-Friday instant computed from the mart AND from silver time travel (they must agree).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import psycopg

from pipelines.config import REPO_ROOT, Settings, settings_env
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_env, dbt_executable
from pipelines.instance import prepare_dagster_home
from pipelines.naming import QualifiedName

Engine = Literal["auto", "dagster", "plain"]
# a log line of the landing step that is not a Dagster event (``- STEP_START -`` etc.): the
# lander's own progress lines
_LANDING_LOG = re.compile(r" - bronze_landing - (?![A-Z_]+ - )(.+)$")
Say = Callable[[str], None]


def dbt_build(
    settings: Settings, *, say: Say = print, select: str | None = None, target: str | None = None
) -> None:
    """``dbt build`` of dbt_project/ as a subprocess (dbt is the warehouse's only writer);
    ``target="iceberg"`` builds from the lake's Iceberg tables."""
    exe = dbt_executable()
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        exe,
        "build",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    if select:
        cmd += ["--select", select]
    if target:
        cmd += ["--target", target]
    proc = subprocess.run(
        cmd, env={**os.environ, **dbt_env(settings)}, capture_output=True, text=True, check=False
    )
    summary = [ln for ln in proc.stdout.splitlines() if "Done. PASS=" in ln]
    say(f"dbt build: {summary[-1].split('  ', 1)[-1].strip() if summary else 'no summary'}")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise RuntimeError(
            f"dbt build failed (exit {proc.returncode}):\n{tail}\n{proc.stderr[-2000:]}"
        )


def wait_until_streamed(settings: Settings, *, timeout: float = 180) -> str:
    """Block until every change committed so far is in Kafka; return the LSN waited for.

    Debezium confirms an LSN to the replication slot only after Kafka Connect has flushed the
    records up to it (offset commit), and heartbeats keep it moving when the shop is idle, so
    ``confirmed_flush_lsn >= pg_current_wal_lsn()`` (taken now) means nothing is in flight.
    """
    with psycopg.connect(settings.pg_dsn(), autocommit=True) as conn:
        (target,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        deadline = time.monotonic() + timeout
        while True:
            row = conn.execute(
                "SELECT confirmed_flush_lsn >= %s::pg_lsn, confirmed_flush_lsn::text "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (target, settings.slot_name),
            ).fetchone()
            if row is None:
                raise RuntimeError(f"replication slot {settings.slot_name!r} does not exist")
            if row[0]:
                return str(target)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Debezium has not streamed up to {target} after {timeout:.0f}s "
                    f"(slot confirmed {row[1]}); is the connector running?"
                )
            time.sleep(0.5)


def _has_definitions() -> bool:
    return (REPO_ROOT / "pipelines" / "definitions.py").exists()


def materialize_all(
    settings: Settings,
    *,
    engine: Engine = "auto",
    say: Say = print,
    tables: Sequence[QualifiedName] | None = None,
) -> str:
    """Bring bronze, silver and the marts up to date; return the engine used.

    ``dagster`` materialises every asset of the code location (``pipelines.definitions``)
    in a subprocess; ``plain`` calls land -> compact_all -> dbt build directly. ``auto`` picks
    Dagster when the code location exists. The one switch for the demo and the tests.
    ``tables`` (plain engine only) limits landing and compaction, e.g. to the shop's tables.
    """
    if engine == "auto":
        engine = "dagster" if _has_definitions() else "plain"
    if engine == "dagster":
        _dagster_materialize(settings, say)
        return engine
    from pipelines.lakeformat import compact_tables
    from pipelines.landing import land

    landed = land(
        settings, tables=tables, until_caught_up=True, progress=lambda m: say(f"bronze: {m}")
    )
    say(f"bronze: landed {landed.events:,} events in {landed.files} files ({landed.seconds:.1f}s)")
    if landed.quarantined:
        raise RuntimeError(f"{landed.quarantined} message(s) quarantined: see `changelake status`")
    t0 = time.monotonic()
    compacted = compact_tables(settings, tables)
    say(f"silver: compacted {len(compacted)} tables ({time.monotonic() - t0:.1f}s)")
    t0 = time.monotonic()
    dbt_build(settings, say=say)
    say(f"marts built ({time.monotonic() - t0:.1f}s)")
    return engine


def _dagster_materialize(settings: Settings, say: Say) -> None:
    """``dagster asset materialize --select '*'`` on the code location, relaying step progress."""
    env = {
        **os.environ,
        **dbt_env(settings),
        **settings_env(settings),
        "DAGSTER_HOME": str(prepare_dagster_home(settings)),
    }
    exe = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    cmd = [exe, "asset", "materialize", "-m", "pipelines.definitions", "--select", "*"]
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen(
        cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            landing = _LANDING_LOG.search(line)
            if landing:
                say(f"bronze: {landing.group(1).strip()}")
            step = re.search(r'(STEP_SUCCESS|STEP_FAILURE) - .*?step "([^"]+)"', line)
            if step:
                say(
                    f"dagster: {step.group(2)} {'ok' if step.group(1) == 'STEP_SUCCESS' else 'FAILED'}"
                )
    if proc.returncode != 0:
        raise RuntimeError("dagster materialize failed:\n" + "\n".join(tail))
    say("dagster: all assets materialised")


def run_demo(
    settings: Settings,
    *,
    rate: float = 40,
    duration: float = 60,
    connections: int = 3,
    seed: int = 42,
    engine: Engine = "auto",
    say: Say = print,
) -> dict:
    """Every step of the demo; returns the answers (the CLI renders them)."""
    from pipelines.shop.answers import inventory_value_check, revenue_by_day, top_products
    from pipelines.shop.migrate import create_shop
    from pipelines.shop.workload import run_workload
    from pipelines.stack import register_connector, up, wait_connector_running

    started = time.monotonic()
    up(settings, progress=say)
    create_shop(settings)
    register_connector(settings)  # the shop's tables may be newer than the connector's start
    wait_connector_running(settings, timeout=120)
    say("shop: schema created and captured")
    work = run_workload(
        settings,
        rate=rate,
        duration=duration,
        connections=connections,
        seed=seed,
        black_friday=True,
    )
    say(
        f"workload: {work.committed:,} transactions in {work.elapsed_s:.1f}s "
        f"= {work.achieved_tps:.1f} tx/s ({work.failed} failed after retries)"
    )
    bf = work.black_friday
    assert bf is not None
    lsn = wait_until_streamed(settings)
    say(f"debezium: every change up to LSN {lsn} is in Kafka")
    used = materialize_all(settings, engine=engine, say=say)
    mart, silver = inventory_value_check(settings, bf.ask_at)
    return {
        "engine": used,
        "workload": work,
        "revenue_by_day": revenue_by_day(settings.warehouse_path),
        "top_products": top_products(settings.warehouse_path),
        "inventory_mart": mart,
        "inventory_silver": silver,
        "seconds": time.monotonic() - started,
    }
