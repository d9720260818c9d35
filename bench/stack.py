"""The benchmarks' PRIVATE stack: its own CHANGELAKE_HOME and ports, one captured bench table.

The machine is shared, so the benchmarks never touch the dev stack on the default ports. Every
figure that needs Kafka/PostgreSQL/Debezium calls ``ensure_stack()``; ``python -m bench --down``
(or ``changelake down --purge`` with the same env) stops and purges it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines.config import REPO_ROOT, Settings

BENCH_TABLE = "bench.events"
FRESH_TABLE = "bench.fresh"  # P2 only: a small topic, so a fresh lake catches up fast
PRIVATE_ENV = {
    "CHANGELAKE_HOME": os.environ.get("BENCH_HOME", "/tmp/bench-home"),
    "CHANGELAKE_PG_PORT": os.environ.get("BENCH_PG_PORT", "55459"),
    "CHANGELAKE_KAFKA_PORT": os.environ.get("BENCH_KAFKA_PORT", "29392"),
    "CHANGELAKE_KAFKA_CONTROLLER_PORT": os.environ.get("BENCH_CONTROLLER_PORT", "29393"),
    "CHANGELAKE_CONNECT_PORT": os.environ.get("BENCH_CONNECT_PORT", "28383"),
    "CHANGELAKE_ORDER_API_PORT": os.environ.get("BENCH_ORDER_API_PORT", "28390"),
    "CHANGELAKE_TOPIC_PREFIX": "bench",
    "CHANGELAKE_SLOT_NAME": "bench_slot",
    "CHANGELAKE_PUBLICATION_NAME": "bench_pub",
    "CHANGELAKE_CONNECTOR_NAME": "bench-postgres",
    "CHANGELAKE_TABLES": f"{BENCH_TABLE},{FRESH_TABLE}",
    "CHANGELAKE_HEARTBEAT_INTERVAL_MS": "1000",
}

# Several types on purpose: the decoder's per-type converters are part of what is measured.
BENCH_DDL = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.events (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    status      text NOT NULL,
    amount      numeric(12, 2),
    quantity    integer,
    note        text,
    is_paid     boolean,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
);
CREATE TABLE IF NOT EXISTS bench.fresh (LIKE bench.events INCLUDING ALL);
"""


def use_env_stack() -> bool:
    """``BENCH_USE_ENV_STACK=1``: run against the stack the environment already points at (the
    pytest ``stack`` fixture) instead of starting the private one."""
    return os.environ.get("BENCH_USE_ENV_STACK") == "1"


def private_env() -> dict[str, str]:
    """Put the private stack's settings into this process's environment (and children's)."""
    if use_env_stack():
        return stack_env()
    os.environ.update(PRIVATE_ENV)
    return dict(PRIVATE_ENV)


def stack_env() -> dict[str, str]:
    """The CHANGELAKE_* variables a child process needs to reach the same stack."""
    if use_env_stack():
        return {k: v for k, v in os.environ.items() if k.startswith("CHANGELAKE_")}
    return dict(PRIVATE_ENV)


def lander_process(
    lake: Path, *args: str, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen:
    """The lander as deployed, ``python -m pipelines.landing *args``, in a process of its own on
    this stack, landing into ``lake``; ``env`` adds or overrides CHANGELAKE_* settings."""
    full = {**os.environ, **stack_env(), "CHANGELAKE_LAKE": str(lake), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "pipelines.landing", *args], env=full, **popen)


def settings(**overrides: object) -> Settings:
    private_env()
    return Settings(**overrides)


def _seed_jars(home: Path) -> None:
    """Reuse the dev stack's resolved jar cache so a private home downloads nothing."""
    src = REPO_ROOT / ".changelake" / "jars"
    dst = home / "jars"
    if src.is_dir() and not dst.exists():
        shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(".lock"))


def ensure_stack(progress=print) -> Settings:  # noqa: ANN001
    """Bring the private stack up with ``bench.events`` captured and the connector RUNNING."""
    from pipelines.stack import lifecycle
    from pipelines.stack.postgres import app_connect

    s = settings()
    if use_env_stack():  # already up; the caller captured bench.events (BENCH_DDL)
        return s
    s.home.mkdir(parents=True, exist_ok=True)
    _seed_jars(s.home)
    lifecycle.up(s, progress=progress)
    with app_connect(s) as conn:
        conn.autocommit = True
        conn.execute(BENCH_DDL)
    lifecycle.register_connector(s)
    lifecycle.wait_connector_running(s, timeout=120)
    return s


def stop_stack(*, purge: bool = True) -> None:
    from pipelines.stack import lifecycle

    lifecycle.down(settings(), purge=purge)
