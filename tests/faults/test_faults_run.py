# ruff: noqa: S608  -- SQL built from the constant table name ACC only
"""``changelake run`` under a live workload, with Connect and Kafka restarts and SIGKILLs of the
service itself (issue 15's acceptance).

Writers move money between accounts, so every committed state sums to the same total; a
sampler reads the live view from the catalog (read-only, a new connection each time) at random
instants and checks each sample against that model: the total never moves, no account is ever
missing or doubled, so no sample shows half a transaction. A probe row is updated now and then
and must show in the live view within 5 s of its commit while ``run`` runs. At the end: SIGTERM
ends ``run`` in under 10 s with exit 0 and a summary, the metrics endpoint served the series,
every Kafka offset is in bronze exactly once and silver equals PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import psycopg
import pytest
from faultkit import exactly_once, lake_settings, settings_env, silver_vs_pg, wait_streamed

from bench.freshness import CHANGELAKE, free_port
from pipelines.bronze.lander import land
from pipelines.bronze.topics import topic_for, transaction_topic
from pipelines.defs.keys import bronze_key, silver_key
from pipelines.defs.runless import changelake_instance
from pipelines.naming import QualifiedName
from pipelines.service import read_status
from pipelines.silver import catalog_path, compact
from pipelines.stack import restart_component, wait_connector_running

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ACC = QualifiedName("runsvc", "accounts")
N, START = 20, 1000
DDL = f"""
CREATE SCHEMA IF NOT EXISTS runsvc;
DROP TABLE IF EXISTS {ACC.sql};
CREATE TABLE {ACC.sql} (id int PRIMARY KEY, balance bigint NOT NULL, note text);
"""


class Transfers(threading.Thread):
    def __init__(self, dsn: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.rnd, self.stop = dsn, random.Random(seed), threading.Event()
        self.commits, self.errors = 0, 0

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn if conn and not conn.closed else psycopg.connect(self.dsn)
                a, b = self.rnd.sample(range(1, N + 1), 2)
                x = self.rnd.randint(1, 50)
                with conn.transaction():
                    conn.execute(
                        f"UPDATE {ACC.sql} SET balance = balance - %s WHERE id = %s", (x, a)
                    )
                    conn.execute(
                        f"UPDATE {ACC.sql} SET balance = balance + %s WHERE id = %s", (x, b)
                    )
                self.commits += 1
            except psycopg.Error:
                self.errors += 1
                conn = None
                time.sleep(0.2)
            time.sleep(self.rnd.uniform(0.005, 0.03))


class Sampler(threading.Thread):
    """Reads the live view at random instants; records every sample that breaks the model."""

    def __init__(self, catalog: Path, seed: int) -> None:
        super().__init__(daemon=True)
        self.catalog, self.rnd, self.stop = catalog, random.Random(seed), threading.Event()
        self.samples, self.bad, self.unreadable = 0, [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            time.sleep(self.rnd.uniform(0.05, 0.5))
            try:
                with duckdb.connect(str(self.catalog), read_only=True) as con:
                    total, n, ids = con.execute(
                        f"SELECT sum(balance), count(*), count(DISTINCT id) FROM {ACC.sql}"
                    ).fetchone()
            except (duckdb.Error, OSError):  # no catalog yet, or replaced mid-open
                self.unreadable += 1
                continue
            self.samples += 1
            if (total, n, ids) != (N * START, N, N):
                self.bad.append((total, n, ids))


def _start_run(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [CHANGELAKE, "run", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _visible_within(catalog: Path, conn: psycopg.Connection, token: str, bound: float) -> float:
    """Commit a probe update; seconds until the live view shows it (fails after ``bound``)."""
    conn.execute(f"UPDATE {ACC.sql} SET note = %s WHERE id = 1", (token,))
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        try:
            with duckdb.connect(str(catalog), read_only=True) as con:
                got = con.execute(f"SELECT note FROM {ACC.sql} WHERE id = 1").fetchone()
            if got and got[0] == token:
                return time.monotonic() - t0
        except (duckdb.Error, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"probe {token} not in the live view {bound}s after its commit")


def _status_with_events(lake: Path, pid: int, bound: float) -> dict | None:
    """Process ``pid``'s status document once it counts landed events (rewritten every ~2 s;
    until the fresh process writes its first, the file is still the killed one's)."""
    t0 = time.monotonic()
    doc = read_status(lake)
    while not (doc and doc["pid"] == pid and doc["figures"]["events"] > 0):
        if time.monotonic() - t0 > bound:
            break
        time.sleep(0.5)
        doc = read_status(lake)
    return doc


def test_run_survives_restarts_and_sigkill_and_the_live_view_never_shows_half_a_transaction(
    stack, tmp_path
) -> None:  # noqa: ANN001
    seed = int(os.environ.get("CHANGELAKE_FAULTS_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    stack.capture("", str(ACC))  # captured from its first row (the event trigger publishes it)
    with stack.pg() as conn:
        conn.execute(DDL)
        conn.execute(f"INSERT INTO {ACC.sql} SELECT g, {START} FROM generate_series(1, {N}) g")
    settings = lake_settings(stack, tmp_path / "lake", [ACC])
    port = free_port()
    env = settings_env(settings) | {
        "CHANGELAKE_RUN_METRICS_PORT": str(port),
        "CHANGELAKE_RUN_REPORT_EVERY_S": "5",
    }
    cat = catalog_path(settings)
    writers = Transfers(settings.pg_dsn(), seed)
    sampler = Sampler(cat, seed)
    proc = _start_run(env)
    kills, probes = 0, []
    try:
        deadline = time.monotonic() + 90
        while not cat.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert cat.exists(), "run wrote no catalog"
        writers.start()
        sampler.start()
        with psycopg.connect(settings.pg_dsn(), autocommit=True) as probe:
            for i in range(3):
                probes.append(_visible_within(cat, probe, f"p{i}", 5.0))
            restart_component(settings, "connect")
            kills += _kill_and_restart(proc, rnd)
            proc = _start_run(env)
            restart_component(settings, "kafka")
            wait_connector_running(settings, timeout=120)
            time.sleep(rnd.uniform(0.5, 3))
            kills += _kill_and_restart(proc, rnd)
            proc = _start_run(env)
            probes.append(_visible_within(cat, probe, "after-restarts", 30.0))
            probes.append(_visible_within(cat, probe, "steady", 5.0))
        # what `changelake status` shows: the Dagster reports have a stage of their own, so
        # loading Dagster in a fresh process no longer holds the status document back
        doc = _status_with_events(settings.lake_root, proc.pid, 30.0)
        assert doc and doc["pid"] == proc.pid and doc["figures"]["events"] > 0, doc
        assert set(doc["stages"]) == {"land", "compact", "observe", "maintain", "report"}
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        for series in (
            "changelake_events_landed_total",
            "changelake_consumer_lag_records",
            "changelake_commit_to_bronze_seconds_bucket",
            "changelake_commit_to_queryable_seconds_bucket",
            "changelake_compaction_seconds_count",
            "changelake_slot_lag_bytes",
            'changelake_stage_up{stage="land"} 1.0',
        ):
            assert series.encode() in body, series
        writers.stop.set()
        writers.join(10)
        time.sleep(2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        stop_s = time.monotonic() - t0
    finally:
        writers.stop.set()
        sampler.stop.set()
        if proc.poll() is None:
            proc.kill()
    sampler.join(10)
    assert proc.returncode == 0, err[-3000:]
    assert stop_s < 10, f"SIGTERM took {stop_s:.1f}s"
    assert "stopped by SIGTERM: ran " in err and '"figures"' in out
    assert kills == 2 and writers.commits > 100, (kills, writers.commits)
    assert sampler.samples > 20 and not sampler.bad, (sampler.samples, sampler.bad[:5])

    with stack.pg() as conn:
        wait_streamed(conn, settings.slot_name)
    land(settings)
    topic, tx = topic_for(settings, ACC), transaction_topic(settings)
    once = exactly_once(settings, [topic, tx], growing=(tx,))
    assert not once.missing and not once.duplicated, (once.missing[:5], once.duplicated[:5])
    compact(settings.lake_root, ACC)
    with stack.pg() as conn:
        diff = silver_vs_pg(conn, settings, ACC, ["id"])
    assert not diff.only_pg and not diff.only_silver and diff.silver_dup_keys == 0, diff
    with changelake_instance(settings) as instance:  # run's work, as the Dagster UI sees it
        for key in (bronze_key(ACC), silver_key(ACC)):
            ev = instance.get_latest_materialization_event(key)
            assert ev is not None, key
            assert "changelake run" in (ev.asset_materialization.description or ""), key
    print(
        f"\nrun faults: seed {seed}, probes {[round(p, 2) for p in probes]} s, "
        f"{sampler.samples} samples, {writers.commits} commits, SIGTERM {stop_s:.1f}s"
    )


def _kill_and_restart(proc: subprocess.Popen, rnd: random.Random) -> int:
    """SIGKILL ``run`` at a random moment a few seconds in; 1 when it was still running."""
    time.sleep(rnd.uniform(1.0, 4.0))
    alive = proc.poll() is None
    proc.kill()
    _, err = proc.communicate(timeout=30)
    assert alive, f"run ended by itself (rc {proc.returncode}): {err[-3000:]}"
    return 1
