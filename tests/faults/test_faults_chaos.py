"""Crashes, restarts and schema changes under a concurrent write workload (issue 8, items 1-3).

One compact scenario on the session stack: three psycopg writers run multi-statement
transactions on ``faults.accounts`` and ``faults.ledger`` while the suite
* SIGKILLs the lander (``python -m pipelines.landing --follow``) at least ``MIN_KILLS`` times:
  at every ``CHANGELAKE_CRASH_AT`` point in turn (random skip, so mid-stream), and from outside
  (``os.kill(pid, SIGKILL)``) a random delay after each stack fault or schema change below;
* SIGKILLs Kafka Connect and restarts it (Debezium replays from its last flushed offset),
  restarts the Kafka broker and restarts PostgreSQL, each with a lander running;
* adds a column, drops a column, widens int -> bigint and starts capturing a new table.
At the end silver must equal PostgreSQL row for row (EXCEPT ALL both ways empty, no duplicate
keys) and every Kafka offset must be in bronze or quarantine exactly once, tombstones never.
The scenario runs once per lake format (``CHANGELAKE_LAKE_FORMAT``): on the Parquet lake, with
the lander killed at each point of its file protocol, and on the Iceberg tables, killed at each
state of the commit protocol every batch passes (``pipelines.iceberg.commit``: checking,
staged, committed), with the Iceberg silver compacted incrementally between faults.
Reproduce a run with ``CHANGELAKE_FAULTS_SEED=<seed printed in the failure/figures>``.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from faultkit import (
    as_of_vs_current,
    bronze_duplicates,
    crash_points,
    exactly_once,
    finish_lander,
    lake_settings,
    record_figures,
    sigkill,
    silver_vs_pg,
    start_lander,
    wait_streamed,
)
from workload import Tables, Workload

from pipelines.bronze.topics import notification_topic, topic_for, transaction_topic
from pipelines.lakeformat import compact_table, remove_orphans
from pipelines.landing import land
from pipelines.stack import connect as connect_proc
from pipelines.stack import restart_component, wait_connector_running
from pipelines.stack.layout import Layout

pytestmark = [pytest.mark.integration, pytest.mark.faults]

MIN_KILLS = 10
ACTIONS = (
    "connect_sigkill",
    "add_column",
    "kafka_restart",
    "drop_column",
    "widen_int_bigint",
    "postgres_restart",
    "capture_new_table",
)


class Chaos:
    """State of the scenario: tables landed, faults done, lander runs."""

    def __init__(self, stack, lake, fmt: str, rnd: random.Random, workload: Workload) -> None:  # noqa: ANN001
        self.stack, self.lake, self.format, self.rnd, self.wl = stack, lake, fmt, rnd, workload
        self.t = workload.tables
        self.tables = [self.t.accounts, self.t.ledger]
        self.faults: Counter = Counter()
        self.runs: list[dict] = []
        self.lander_errors: list[str] = []
        self.episodes = 0
        self.points: list[str] = []

    def settings(self):  # noqa: ANN201
        return lake_settings(self.stack, self.lake, self.tables, lake_format=self.format)

    def _note(self, run) -> None:  # noqa: ANN001
        self.runs.append({"how": run.how, "rc": run.returncode, "result": run.result})
        if "Kafka unreachable" in run.stderr_tail:  # the lander rode through a broker outage
            self.faults["lander_retried_through_kafka_outage"] += 1
        if run.killed:
            self.faults["lander_sigkill"] += 1
            self.faults[f"lander_{run.how.split(' ')[0]}"] += 1
        elif run.returncode != 0:
            self.lander_errors.append(f"{run.how} rc={run.returncode}: {run.stderr_tail}")

    def crash_episode(self) -> None:
        """One lander run SIGKILLed by itself at a crash point (each point in turn, random skip)."""
        self.episodes += 1
        if not self.points:
            self.points = list(crash_points(self.settings()))
            self.rnd.shuffle(self.points)
        point, skip = self.points.pop(), self.rnd.randint(0, 3)
        proc = start_lander(self.settings(), crash_at=point, skip=skip, max_seconds=8)
        self._note(finish_lander(proc, f"crash_at:{point}"))

    def kill_episode(self) -> None:
        """One lander run SIGKILLed from outside after a random delay."""
        self.episodes += 1
        proc = start_lander(self.settings(), max_seconds=60)
        time.sleep(self.rnd.uniform(1.5, 5.0))
        sigkill(proc)
        self._note(finish_lander(proc, "external_sigkill"))

    def fault(self, action: str) -> None:
        """Inject one stack fault or schema change while a lander runs, then SIGKILL it."""
        proc = start_lander(self.settings(), max_seconds=300)
        proc.wait_landing()  # the fault hits a lander in its loop, not one still bootstrapping
        t0 = time.monotonic()
        settings = self.stack.settings
        with self.stack.pg() as conn:
            if action == "connect_sigkill":
                pid = connect_proc.pid(Layout.of(settings))
                assert pid, "Kafka Connect is not running"
                os.kill(pid, signal.SIGKILL)
                time.sleep(2)
                restart_component(settings, "connect")
            elif action == "kafka_restart":
                restart_component(settings, "kafka")
                wait_connector_running(settings, timeout=120)
            elif action == "postgres_restart":
                conn.close()
                restart_component(settings, "postgres")
                wait_connector_running(settings, timeout=120)
            elif action == "add_column":
                conn.execute(f"ALTER TABLE {self.t.accounts.sql} ADD COLUMN tag text")
                self.wl.flags.tagged = True
            elif action == "drop_column":
                conn.execute(f"ALTER TABLE {self.t.accounts.sql} DROP COLUMN note")
            elif action == "widen_int_bigint":
                conn.execute(f"ALTER TABLE {self.t.ledger.sql} ALTER COLUMN amount TYPE bigint")
                self.wl.flags.wide = True
            elif action == "capture_new_table":
                self.stack.capture(self.t.late_ddl, str(self.t.late))
                self.tables.append(self.t.late)
                self.wl.flags.late = True
            else:
                raise ValueError(action)
        self.faults[action] += 1
        self.faults[f"{action}_seconds"] = round(time.monotonic() - t0, 1)
        time.sleep(self.rnd.uniform(0.2, 3.0))
        sigkill(proc)
        self._note(finish_lander(proc, f"sigkill_after_{action}"))


def compact_landed(settings, tables) -> int:  # noqa: ANN001
    """Compact each of ``tables`` that has bronze (a table captured a moment ago may not)."""
    done = 0
    for t in tables:
        try:
            compact_table(settings, str(t))
            done += 1
        except LookupError:
            continue
    return done


# One PostgreSQL schema per format: the two runs share the session stack but no table or topic.
FORMATS = {"parquet": Tables("faults"), "iceberg": Tables("faults_iceberg")}


@pytest.mark.parametrize("lake_format", sorted(FORMATS))
def test_crashes_restarts_and_schema_changes_lose_nothing(stack, tmp_path, lake_format) -> None:  # noqa: ANN001
    seed = int(os.environ.get("CHANGELAKE_FAULTS_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    t_start = time.monotonic()
    tables = FORMATS[lake_format]
    stack.capture(tables.ddl, str(tables.accounts), str(tables.ledger))
    wl = Workload(stack.settings.pg_dsn(), tables, threads=3, pace_s=0.06, seed=seed)
    wl.seed_rows()
    chaos = Chaos(stack, tmp_path / "lake", lake_format, rnd, wl)
    points = crash_points(chaos.settings())
    wl.start()
    compactions = 0
    try:
        actions = list(ACTIONS)
        rnd.shuffle(actions)
        for i, action in enumerate(actions):
            if i < len(points):
                chaos.crash_episode()
            chaos.fault(action)
            if chaos.faults["lander_sigkill"] % 3 == 0:  # incremental silver while faults go on
                compactions += compact_landed(chaos.settings(), chaos.tables)
        while chaos.faults["lander_sigkill"] < MIN_KILLS and chaos.episodes < 40:
            chaos.kill_episode()
    finally:
        stats = wl.stop()
    assert not stats.errors, f"workload hit unexpected errors: {stats.errors[:5]}"
    assert stats.commits > 100, f"workload committed only {stats.commits} transactions"

    settings = chaos.settings()
    with stack.pg() as conn:
        drain_s = wait_streamed(conn, settings.slot_name)
    final = land(settings)
    notes = notification_topic(settings) + "["  # notified at a task restart: may come later
    lags = {k: v for k, v in final.lag.items() if not k.startswith(notes)}
    assert final.lag and all(v == 0 for k, v in lags.items() if "transaction" not in k)

    for t in chaos.tables:
        compact_table(settings, str(t), catalog=True)
    # Iceberg: the files the killed commits left, swept with no age guard (nothing is in
    # flight now); every check below then reads the lake the sweep left
    orphans = remove_orphans(settings, older_than=timedelta(0))

    topics = [topic_for(settings, t) for t in chaos.tables]
    tx = transaction_topic(settings)
    once = exactly_once(settings, [*topics, tx], growing=(tx,))

    keys = {tables.accounts: ["id"], tables.ledger: ["id"], tables.late: ["k"]}
    diffs, bronze_dups, asof_diff = {}, {}, {}
    with stack.pg() as conn:
        for t in chaos.tables:
            diffs[str(t)] = silver_vs_pg(conn, settings, t, keys[t])
            bronze_dups[str(t)] = bronze_duplicates(settings, t, keys[t])
            asof_diff[str(t)] = as_of_vs_current(settings, t)

    rows_lost = sum(len(d.only_pg) for d in diffs.values()) + len(once.missing)
    record_figures(
        "chaos" if lake_format == "parquet" else f"chaos_{lake_format}",
        {
            "seed": seed,
            "lake_format": lake_format,
            "faults_injected": dict(chaos.faults),
            "lander_kills": chaos.faults["lander_sigkill"],
            "lander_runs": len(chaos.runs),
            "lander_runs_ending_in_error": len(chaos.lander_errors),
            "workload": {
                "commits": stats.commits,
                "rollbacks": stats.rollbacks,
                "reconnects": stats.reconnects,
            },
            "events_in_topics": once.offsets,
            "tombstones_in_topics": once.tombstones,
            "final_land": {
                "events": final.events,
                "messages": final.messages,
                "quarantined": final.quarantined,
                "seconds": round(final.seconds, 1),
            },
            "drain_seconds": round(drain_s, 1),
            "incremental_compactions_during_faults": compactions,
            "orphan_files_deleted": sum(r.deleted for r in orphans),
            "orphan_bytes_deleted": sum(r.bytes for r in orphans),
            "duplicates_in_bronze": bronze_dups,
            "duplicated_offsets_in_lake": len(once.duplicated),
            "duplicates_in_silver": {k: d.silver_dup_keys for k, d in diffs.items()},
            "rows_lost": rows_lost,
            "silver_rows": {k: d.silver_rows for k, d in diffs.items()},
            "postgres_rows": {k: d.pg_rows for k, d in diffs.items()},
            "only_in_postgres": {k: len(d.only_pg) for k, d in diffs.items()},
            "only_in_silver": {k: len(d.only_silver) for k, d in diffs.items()},
            "as_of_now_vs_current_diff_rows": asof_diff,
            "seconds": round(time.monotonic() - t_start, 1),
        },
    )

    assert not chaos.lander_errors, (
        f"lander ended in error (seed {seed}): {chaos.lander_errors[:2]}"
    )
    assert chaos.faults["lander_sigkill"] >= MIN_KILLS
    assert not once.duplicated, f"offsets landed twice (seed {seed}): {list(once.duplicated)[:5]}"
    assert not once.missing, f"offsets never landed (seed {seed}): {once.missing[:5]}"
    assert not once.tombstones_landed and not once.invented
    for name, d in diffs.items():
        assert d.silver_dup_keys == 0, f"{name}: duplicate keys in silver (seed {seed})"
        assert not d.only_pg and not d.only_silver, (
            f"{name} (seed {seed}): only in PostgreSQL {d.only_pg}, only in silver {d.only_silver}"
        )
        assert d.pg_rows == d.silver_rows
    assert all(d == (0, 0) for d in asof_diff.values()), f"as_of(now) != current: {asof_diff}"
    assert diffs[str(tables.accounts)].pg_rows > 0 and diffs[str(tables.late)].pg_rows > 0
