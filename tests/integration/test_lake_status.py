"""The first hour's resets and views, through the real ``changelake`` CLI as subprocesses:

* ``down --purge`` is a fresh start: on a private home that held a lake landed from another
  Kafka cluster, ``down --purge && up && shop create && workload && land`` works (without the
  purge, ``land`` refuses that lake), and the jar cache (a symlink, as here) survives;
* ``status --json`` on the session stack: lag > 0 while events wait, lag 0 and a silver
  watermark after ``land`` + ``compact``;
* ``land --follow`` prints progress and, on SIGTERM, lands what is in flight, prints a summary
  and exits 0 without leaked-semaphore warnings.

The purge test runs its own stack (it must stop and purge it); run it on its own under
``/work/stacklock`` (``-k purge``) so a machine never runs more than its share of stacks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import SHARED_JAR_CACHE, StackHandle, free_ports

from pipelines.bronze.lander import verify_landed
from pipelines.shop.demo import wait_until_streamed

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "changelake")  # the installed entry point
TABLE = "status_it.items"
DDL = "CREATE SCHEMA status_it; CREATE TABLE status_it.items (id int PRIMARY KEY, v text);"


def run(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    res = run(env, *args, timeout=timeout)
    assert res.returncode == 0, f"changelake {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def _private_env(home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    pg, kafka, controller, connect = free_ports(4)
    return {
        **base,
        "CHANGELAKE_HOME": str(home),
        "CHANGELAKE_PG_PORT": str(pg),
        "CHANGELAKE_KAFKA_PORT": str(kafka),
        "CHANGELAKE_KAFKA_CONTROLLER_PORT": str(controller),
        "CHANGELAKE_CONNECT_PORT": str(connect),
    }


def test_purge_then_up_then_land_works_on_a_home_that_held_a_lake() -> None:
    home = Path(tempfile.mkdtemp(prefix="changelake-purge-"))  # not under pytest's 0700 tmp
    home.chmod(0o755)  # the postgres server user must reach its data dir inside
    SHARED_JAR_CACHE.mkdir(parents=True, exist_ok=True)
    (home / "jars").symlink_to(SHARED_JAR_CACHE, target_is_directory=True)
    cached = sorted(p.name for p in SHARED_JAR_CACHE.iterdir())
    env = _private_env(home)
    try:
        # the first life of this home: a real lake landed from the first Kafka cluster
        ok(env, "up")
        ok(env, "shop", "create")
        ok(env, "workload", "--duration", "3", "--rate", "10")
        ok(env, "land")
        assert (home / "lake" / "_landed" / "_source.json").exists()
        ok(env, "compact")
        purged = ok(env, "down", "--purge")
        out = purged.stdout + purged.stderr
        for name in ("lake", "postgres", "kafka", "logs"):
            assert f"removed {home / name}" in out, out
        assert sorted(p.name for p in home.iterdir()) == ["jars"]
        assert (home / "jars").is_symlink()
        assert sorted(p.name for p in SHARED_JAR_CACHE.iterdir()) == cached
        # the acceptance sequence
        ok(env, "up")
        ok(env, "shop", "create")
        ok(env, "workload", "--duration", "10", "--rate", "10")
        landed = ok(env, "land")
        assert "LakeSourceMismatch" not in landed.stderr
    finally:
        res = run(env, "down", "--purge")
        (home / "jars").unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)
        assert res.returncode == 0, res.stderr
    assert SHARED_JAR_CACHE.is_dir() and sorted(p.name for p in SHARED_JAR_CACHE.iterdir())


def _lake_env(stack: StackHandle, lake: Path) -> dict[str, str]:
    """The session stack, a lake of this test's own, only this module's table."""
    return {**os.environ, "CHANGELAKE_LAKE": str(lake), "CHANGELAKE_TABLES": TABLE}


def _insert(stack: StackHandle, start: int, n: int) -> None:
    with stack.pg() as conn:
        for i in range(start, start + n, 5):  # a few rows per transaction
            with conn.transaction():
                for k in range(i, min(i + 5, start + n)):
                    conn.execute("INSERT INTO status_it.items VALUES (%s, %s)", (k, f"v{k}"))


@pytest.fixture(scope="module")
def items(stack: StackHandle) -> StackHandle:
    stack.capture(DDL, TABLE)
    return stack


def _table(doc: dict) -> dict:
    (t,) = [t for t in doc["lake"]["tables"] if t["table"] == TABLE]
    return t


def test_status_json_lag_then_watermark_after_land_and_compact(
    items: StackHandle, tmp_path: Path
) -> None:
    env = _lake_env(items, tmp_path / "lake")
    _insert(items, 0, 20)
    wait_until_streamed(items.settings)
    doc = json.loads(ok(env, "status", "--json").stdout)
    assert doc["healthy"] and doc["lake"]["kafka_available"]
    t = _table(doc)
    assert t["lag"] >= 20 and t["bronze_rows"] == 0 and t["silver"] is None
    assert t["partitions"][0]["landed_offset"] == 0

    ok(env, "land")
    ok(env, "compact", TABLE)
    doc = json.loads(ok(env, "status", "--json").stdout)
    t = _table(doc)
    assert t["lag"] == 0 and t["bronze_rows"] >= 20
    silver = t["silver"]
    assert silver is not None and silver["rows"] == 20
    assert silver["watermark_lsn"] > 0 and silver["watermark_lsn_text"].count("/") == 1
    assert silver["watermark_ts"] and silver["freshness_seconds"] >= 0
    assert doc["lake"]["transactions"]["bronze_rows"] > 0

    _insert(items, 100, 7)  # events wait again
    wait_until_streamed(items.settings)
    assert _table(json.loads(ok(env, "status", "--json").stdout))["lag"] >= 7


def test_land_follow_reports_progress_and_stops_cleanly_on_sigterm(
    items: StackHandle, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    env = {**_lake_env(items, lake), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [CLI, "land", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        _insert(items, 1000, 30)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("events/s, lag" in ln for ln in lines):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.5)
        assert any("events/s, lag" in ln for ln in lines), "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    reader.join(timeout=10)
    err = "".join(lines) + (proc.stdout.read() if proc.stdout else "")
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err and "landed" in err, err
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    verify_landed(lake)  # no incomplete batch: the stop was graceful
