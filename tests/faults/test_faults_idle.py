"""An idle database (issue 8, item 6): captured tables quiet, an uncaptured table busy.

Without heartbeats Debezium would confirm nothing while only uncaptured tables change, so the
slot's ``confirmed_flush_lsn`` would stay put and the retained WAL grow without bound. The
connector's heartbeat (``heartbeat.action.query`` writing a table in the publication) must
keep the slot advancing: its lag stays bounded by a few heartbeat intervals of WAL.
"""

from __future__ import annotations

import time

import pytest
from faultkit import record_figures, slot_position

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WINDOW_S = 24.0


def test_heartbeats_keep_the_slot_advancing_on_an_idle_database(stack) -> None:  # noqa: ANN001
    settings = stack.settings
    interval = settings.heartbeat_interval_ms / 1000
    with stack.pg() as conn:
        conn.execute(
            "CREATE SCHEMA IF NOT EXISTS faults_idle; DROP TABLE IF EXISTS faults_idle.noise;"
            "CREATE TABLE faults_idle.noise (id bigserial PRIMARY KEY, pad text)"
        )
        captured = {(q.schema, q.table) for q in settings.captured}
        assert ("faults_idle", "noise") not in captured
        start_wal, start_flushed = slot_position(conn, settings.slot_name)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < WINDOW_S:
            conn.execute(
                "INSERT INTO faults_idle.noise (pad) SELECT repeat(md5(g::text), 8) "
                "FROM generate_series(1, 200) g"
            )
            wal, flushed = slot_position(conn, settings.slot_name)
            samples.append((time.monotonic() - t0, wal - flushed, flushed))
            time.sleep(0.25)
        end_wal, end_flushed = slot_position(conn, settings.slot_name)

    written = end_wal - start_wal
    rate = written / WINDOW_S
    # after the first few heartbeat intervals, lag never exceeds ~3 intervals of WAL
    bound = max(rate * 3 * interval, 256 * 1024)
    steady = [lag for t, lag, _ in samples if t > 3 * interval]
    advanced = end_flushed - start_flushed
    record_figures(
        "idle_database",
        {
            "window_s": WINDOW_S,
            "heartbeat_interval_s": interval,
            "wal_written_bytes": written,
            "slot_advanced_bytes": advanced,
            "max_lag_bytes": max(lag for _, lag, _ in samples),
            "max_steady_lag_bytes": max(steady),
            "lag_bound_bytes": int(bound),
            "end_lag_bytes": end_wal - end_flushed,
        },
    )
    assert written > 2 * 1024 * 1024, "the noise workload wrote too little WAL to judge"
    assert advanced > written / 2, f"slot advanced {advanced} B while {written} B of WAL passed"
    assert max(steady) <= bound, f"slot lag {max(steady)} B > bound {bound:.0f} B"
