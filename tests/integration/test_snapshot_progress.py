"""Time travel into an incremental snapshot says so: a table with rows added to a running
pipeline is read chunk by chunk, and ``as-of`` at an instant before that snapshot finished
notes that rows may be missing (CLI on stderr, Python API as a ``SnapshotInProgress`` warning);
after it finished, nothing is noted and silver equals PostgreSQL. The instants come from the
landed Debezium notifications (bronze ``_notifications``)."""

from __future__ import annotations

import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from cli_run import run
from silver_vs_pg import converge

from pipelines import silver
from pipelines.bronze.lander import land
from pipelines.bronze.reader import files
from pipelines.config import Settings
from pipelines.lakestatus import lake_status
from pipelines.shop.demo import wait_until_streamed

pytestmark = pytest.mark.integration

ROWS = 50_000  # ~10 s of chunks: landing rounds see the snapshot running
DDL = f"""
CREATE SCHEMA IF NOT EXISTS snapprog_it;
CREATE TABLE snapprog_it.items (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO snapprog_it.items SELECT g, 0, repeat('x', 200) FROM generate_series(1, {ROWS}) g;
"""  # noqa: S608 - a constant


def _as_of_cli(settings: Settings, table, instant) -> str:  # noqa: ANN001
    res = run(
        ["as-of", str(table), instant.isoformat(), "--format", "csv", "--columns", "id"],
        {"CHANGELAKE_LAKE": str(settings.lake_root), "CHANGELAKE_TABLES": str(table)},
    )
    assert res.returncode == 0, res.stderr
    return res.stderr


def test_as_of_during_the_snapshot_says_the_table_is_still_being_snapshotted(
    stack, tmp_path: Path
) -> None:
    with stack.pg() as conn:
        conn.execute(DDL)
    (table,) = stack.capture("", "snapprog_it.items")  # rows exist: an incremental snapshot
    fields = stack.settings.model_dump()
    fields.update(lake=tmp_path / "lake", tables=(str(table),))
    settings = Settings(**fields)

    seen_running = None  # a landing round that saw the snapshot started, not finished
    deadline = time.monotonic() + 240
    while True:
        wait_until_streamed(settings)
        land(settings, until_caught_up=True)
        runs = silver.snapshot_runs(settings.lake_root, table)
        if runs and runs[-1].finished is None and seen_running is None:
            seen_running = runs[-1]
            st = lake_status(settings, None)
            (row,) = [t for t in st.tables if t.table == str(table)]
            assert row.snapshotting is not None and row.snapshotting["partial"], row
        if runs and runs[-1].finished is not None:
            break
        assert time.monotonic() < deadline, f"the snapshot of {table} did not finish: {runs}"
        time.sleep(0.5)
    assert files(settings.lake_root, "_notifications")
    (run_,) = runs  # the new task read the signal: not answered UNKNOWN_SCHEMA by the old one
    assert run_.outcome == "TABLE_SCAN_COMPLETED:SUCCEEDED", run_
    assert run_.initial and not run_.filtered, run_
    assert run_.started < run_.finished, run_

    during = run_.started + (run_.finished - run_.started) / 2
    note = _as_of_cli(settings, table, during)
    assert f"{table} was still being snapshotted at {during.isoformat()}" in note, note
    assert f"finished {run_.finished.isoformat()}" in note and "may be missing" in note, note
    with pytest.warns(silver.SnapshotInProgress) as caught:
        rows = silver.as_of(settings.lake_root, table, during)
    assert caught[0].message.run.id == run_.id
    assert 0 < rows.num_rows < ROWS  # really partial: only the chunks read by then
    assert b"changelake.snapshotting" in rows.schema.metadata

    after = run_.finished + timedelta(seconds=1)
    assert "snapshotted" not in _as_of_cli(settings, table, after)
    with warnings.catch_warnings():
        warnings.simplefilter("error", silver.SnapshotInProgress)
        silver.as_of(settings.lake_root, table, after)
    assert converge(stack, settings, table) == ROWS
    assert seen_running is not None and seen_running.id == run_.id  # status showed it running
