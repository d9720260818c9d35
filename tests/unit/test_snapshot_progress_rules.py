"""Snapshot progress from landed notifications: the rows decode and land in bronze
``_notifications`` through the lander's own path (malformed ones quarantined), and
``snapshot_progress`` tells when a table's existing rows were still being brought in.

The messages have the shape the real connector produced (Debezium 3, sink channel, recorded in
the integration test's lake): ``additional_data`` a string map, ``timestamp`` epoch ms."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from pipelines.bronze.lander import land_batch
from pipelines.bronze.reader import files
from pipelines.decode import RawMessage
from pipelines.naming import QualifiedName
from pipelines.silver.snapshot_progress import snapshot_runs, snapshotting_at
from pipelines.stack.signal import FILTERED_ID_PREFIX

pytestmark = pytest.mark.unit

PREFIX = "cl"
TOPIC = f"{PREFIX}.notifications"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ITEMS = QualifiedName("app", "items")
_SCHEMA = {
    "type": "struct",
    "optional": False,
    "name": "io.debezium.connector.common.Notification",
    "fields": [
        {"field": "id", "type": "string", "optional": False},
        {"field": "aggregate_type", "type": "string", "optional": False},
        {"field": "type", "type": "string", "optional": False},
        {
            "field": "additional_data",
            "type": "map",
            "keys": {"type": "string", "optional": False},
            "values": {"type": "string", "optional": False},
            "optional": True,
        },
        {"field": "timestamp", "type": "int64", "optional": False},
    ],
}


def note(ident: str, kind: str, at_s: float, agg: str = "Incremental Snapshot", **data) -> dict:
    data = {"connector_name": "changelake", **data}
    ts = int((T0 + timedelta(seconds=at_s)).timestamp() * 1000)
    return {
        "id": ident,
        "aggregate_type": agg,
        "type": kind,
        "additional_data": data,
        "timestamp": ts,
    }


def raw(payloads: list[dict | bytes], first: int = 0) -> list[RawMessage]:
    out = []
    for i, p in enumerate(payloads):
        value = p if isinstance(p, bytes) else orjson.dumps({"schema": _SCHEMA, "payload": p})
        out.append(RawMessage(TOPIC, 0, first + i, 1_700_000_000_000, None, value))
    return out


def full_run(ident: str, start: float, end: float, table: str = "app.items") -> list[dict]:
    return [
        note(ident, "STARTED", start, data_collections=table),
        note(ident, "IN_PROGRESS", start + 1, data_collections=table,
             current_collection_in_progress=table, last_processed_key="1024"),
        note(ident, "TABLE_SCAN_COMPLETED", end, data_collections=table,
             scanned_collection=table, total_rows_scanned="5000", status="SUCCEEDED"),
        note(ident, "COMPLETED", end + 0.5),
    ]  # fmt: skip


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_notifications_land_in_bronze_and_a_malformed_one_is_quarantined(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    msgs = raw([*full_run("changelake-a", 0, 10), b'{"schema":{},"payload":{"id":1}}'])
    w = land_batch(lake, msgs, topic_prefix=PREFIX)
    assert (w.notifications, w.quarantined) == (4, 1)
    (path,) = files(lake, "_notifications")
    t = pq.read_table(path)
    assert t.column("type").to_pylist() == [
        "STARTED",
        "IN_PROGRESS",
        "TABLE_SCAN_COMPLETED",
        "COMPLETED",
    ]
    assert t.column("scanned_collection").to_pylist()[2] == "app.items"
    assert t.column("_offset").to_pylist() == [0, 1, 2, 3]
    assert orjson.loads(t.column("additional_data")[1].as_py())["last_processed_key"] == "1024"
    assert t.column("ts")[0].as_py() == T0
    (q,) = (lake / "quarantine").rglob("*.parquet")
    assert "malformed notification" in pq.read_table(q).column("error")[0].as_py()


def test_running_from_started_until_its_table_scan_completed(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    other = [
        note("x", "STARTED", 1, agg="Initial Snapshot"),
        note("x", "COMPLETED", 50, agg="Initial Snapshot"),
    ]
    land_batch(lake, raw([*other, *full_run("changelake-a", 5, 20)]), topic_prefix=PREFIX)
    (r,) = snapshot_runs(lake, ITEMS)
    assert (r.id, r.started, r.finished, r.initial, r.filtered) == (
        "changelake-a",
        at(5),
        at(20),
        True,
        False,
    )
    assert r.outcome == "TABLE_SCAN_COMPLETED:SUCCEEDED"
    assert snapshotting_at(lake, ITEMS, at(4)) is None  # before: nothing noted
    assert snapshotting_at(lake, ITEMS, at(5)) == r
    assert snapshotting_at(lake, ITEMS, at(19.9)) == r
    assert snapshotting_at(lake, ITEMS, at(20)) is None
    assert snapshotting_at(lake, QualifiedName("app", "other"), at(10)) is None
    note_text = r.note(at(10))
    assert note_text.startswith(f"app.items was still being snapshotted at {at(10).isoformat()}")
    assert f"finished {at(20).isoformat()}" in note_text and "may be missing" in note_text


def test_unfinished_snapshot_is_running_and_says_not_yet(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    land_batch(lake, raw(full_run("changelake-a", 5, 20)[:2]), topic_prefix=PREFIX)
    r = snapshotting_at(lake, ITEMS, at(1e6))
    assert r is not None and r.finished is None and "finished not yet" in r.note(at(1e6))


def test_a_rerun_or_a_filtered_snapshot_does_not_make_the_table_partial(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    f = f"{FILTERED_ID_PREFIX}1"
    land_batch(
        lake,
        raw([*full_run("changelake-a", 0, 10), *full_run(f, 20, 30), *full_run("changelake-b", 40, 50)]),
        topic_prefix=PREFIX,
    )  # fmt: skip
    runs = snapshot_runs(lake, ITEMS)
    assert [(r.id, r.filtered, r.initial) for r in runs] == [
        ("changelake-a", False, True),
        (f, True, False),
        ("changelake-b", False, False),
    ]
    assert snapshotting_at(lake, ITEMS, at(25)) is None
    assert snapshotting_at(lake, ITEMS, at(45)) is None


def test_after_an_abort_the_next_full_snapshot_still_brings_the_rows_in(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    aborted = [
        note("changelake-a", "STARTED", 0, data_collections="app.items,app.other"),
        note("changelake-a", "ABORTED", 3, data_collections="app.other"),  # not ours
        note("changelake-a", "ABORTED", 4),
    ]
    land_batch(lake, raw([*aborted, *full_run("changelake-b", 10, 20)]), topic_prefix=PREFIX)
    runs = snapshot_runs(lake, ITEMS)
    assert [(r.finished, r.outcome, r.initial) for r in runs] == [
        (at(4), "ABORTED", True),
        (at(20), "TABLE_SCAN_COMPLETED:SUCCEEDED", True),
    ]
    assert snapshotting_at(lake, ITEMS, at(3.5)).id == "changelake-a"
    assert snapshotting_at(lake, ITEMS, at(15)).id == "changelake-b"
    assert snapshotting_at(lake, ITEMS, at(7)) is None
    assert [r.finished for r in snapshot_runs(lake, QualifiedName("app", "other"))] == [at(3)]


def test_after_a_failed_scan_the_next_full_snapshot_still_brings_the_rows_in(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    regex = r"app\.items"  # recorded: an unresolved collection, the connector lacked its schema
    failed = [
        note("changelake-a", "STARTED", 0, data_collections=regex),
        note("changelake-a", "TABLE_SCAN_COMPLETED", 0.1, data_collections=regex,
             scanned_collection=regex, status="UNKNOWN_SCHEMA"),
        note("changelake-a", "COMPLETED", 0.2),
    ]  # fmt: skip
    land_batch(lake, raw([*failed, *full_run("changelake-b", 10, 20)]), topic_prefix=PREFIX)
    runs = snapshot_runs(lake, ITEMS)
    assert [(r.outcome, r.initial) for r in runs] == [
        ("TABLE_SCAN_COMPLETED:UNKNOWN_SCHEMA", True),
        ("TABLE_SCAN_COMPLETED:SUCCEEDED", True),
    ]
    assert snapshotting_at(lake, ITEMS, at(15)).id == "changelake-b"


def test_no_notifications_means_no_snapshot(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert snapshot_runs(tmp_path / "lake", ITEMS) == []


def test_status_shows_a_table_being_snapshotted(tmp_path: Path) -> None:
    from rich.console import Console

    from pipelines.cli.lakestatus import lake_table
    from pipelines.config import Settings
    from pipelines.lakestatus import lake_status

    lake = tmp_path / "lake"
    land_batch(lake, raw(full_run("changelake-a", 5, 20)[:2]), topic_prefix=PREFIX)
    settings = Settings(lake=lake, tables=("app.items",), topic_prefix=PREFIX)
    (row,) = lake_status(settings, None).tables
    assert row.snapshotting == {
        "id": "changelake-a",
        "started": at(5).isoformat(),
        "filtered": False,
        "partial": True,
    }
    console = Console(record=True, width=200)
    console.print(lake_table(lake_status(settings, None)))
    assert "(snapshotting since 2026-03-01 12:00:05Z)" in console.export_text()
