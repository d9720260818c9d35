"""The lake side of ``changelake status`` on lakes written by the real bronze writer, the real
decoder (quarantine) and real compaction."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_silver_support import TABLE, Lake, build

from pipelines import silver
from pipelines.bronze.lander import land_batch
from pipelines.config import Settings
from pipelines.decode import RawMessage
from pipelines.lakestatus import lake_status, lsn_text
from pipelines.naming import QualifiedName
from pipelines.silver.snapshots import current

pytestmark = pytest.mark.unit

TXS = [
    [("write", 1, 0, "a1", 1), ("write", 2, 0, "b1", 2)],
    [("write", 3, 0, "c", 3), ("delete", 1, 0, None, None)],
]


def _settings(lake: Path) -> Settings:
    return Settings(home=lake.parent, lake=lake, topic_prefix="cl", tables=("s.t", "s.empty"))


def _lake(root: Path) -> tuple[Lake, int]:
    """Two landed batches (a snapshot row + two transactions) and their ENDs; returns events."""
    sc = build([(0, "s0", 0)], TXS, [7])
    lk = Lake(root)
    half = len(sc.events) // 2
    lk.land(sc.events[:half], [sc.ends[u] for u in sorted(sc.ends)])
    lk.land(sc.events[half:])
    return lk, len(sc.events)


def test_an_empty_lake_and_kafka_down(tmp_path: Path) -> None:
    st = lake_status(_settings(tmp_path / "lake"), None)
    assert not st.kafka_available
    assert [t.table for t in st.tables] == ["s.t", "s.empty"]
    for t in (*st.tables, st.transactions):
        assert (t.lag, t.bronze_files, t.bronze_rows, t.quarantined, t.silver) == (
            None,
            0,
            0,
            0,
            None,
        )


def test_bronze_counts_lag_and_silver_watermark(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lk, n_events = _lake(root)
    settings = _settings(root)
    waiting = 5
    ends = {("cl.s.t", 0): lk.offset + waiting, ("cl.transaction", 0): lk.tx_offset}
    st = lake_status(settings, ends)
    t = next(x for x in st.tables if x.table == "s.t")
    assert st.kafka_available and t.captured and t.topic == "cl.s.t"
    on_disk = list((root / "bronze" / "s" / "t").rglob("*.parquet"))
    assert len(on_disk) >= 2  # two batches, split by commit date
    assert (t.bronze_files, t.bronze_rows) == (len(on_disk), n_events)
    assert t.lag == waiting
    assert [(p.partition, p.landed_offset, p.end_offset) for p in t.partitions] == [
        (0, lk.offset, lk.offset + waiting)
    ]
    assert t.silver is None  # not compacted yet
    empty = next(x for x in st.tables if x.table == "s.empty")
    assert (empty.lag, empty.partitions) == (0, ())  # no topic yet: nothing waits
    assert (st.transactions.bronze_rows, st.transactions.lag) == (lk.tx_offset, 0)

    silver.compact(root, TABLE, catalog=False)
    m = current(root, TABLE)
    assert m is not None and m.watermark_lsn is not None
    now = datetime.fromisoformat(m.watermark_ts) + timedelta(seconds=90)
    st = lake_status(settings, {**ends, ("cl.s.t", 0): lk.offset}, now=now)
    t = next(x for x in st.tables if x.table == "s.t")
    assert t.lag == 0
    assert t.silver is not None
    assert (t.silver.snapshot_id, t.silver.rows) == (m.snapshot_id, m.rows)
    assert t.silver.watermark_lsn == m.watermark_lsn and t.silver.watermark_ts == m.watermark_ts
    assert t.silver.watermark_lsn_text == lsn_text(m.watermark_lsn)
    assert t.silver.freshness_seconds == 90.0

    doc = json.loads(json.dumps(st.as_dict()))  # JSON-ready as is
    assert doc["version"] == 1
    assert set(doc) >= {"root", "kafka_available", "generated_at", "tables", "transactions"}
    row = doc["tables"][0]
    assert set(row) == {
        "table",
        "captured",
        "topic",
        "lag",
        "partitions",
        "bronze_files",
        "bronze_rows",
        "quarantined",
        "silver",
        "snapshotting",
    }
    assert row["snapshotting"] is None  # no notification landed
    assert row["silver"]["watermark_lsn"] == m.watermark_lsn


def test_quarantine_is_counted_per_topic(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lk, _ = _lake(root)
    bad = [RawMessage("cl.s.t", 0, lk.offset + i, 0, b"{}", b"not json") for i in range(3)]
    land_batch(root, bad, topic_prefix="cl")
    st = lake_status(_settings(root), None)
    t = next(x for x in st.tables if x.table == "s.t")
    assert t.quarantined == 3 and st.quarantined == 3
    assert t.lag is None  # Kafka down: unknown, not zero
    assert t.partitions[0].landed_offset == lk.offset + 3  # the lake's own figure stays


def test_a_table_no_longer_captured_still_shows(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    Lake(root, table=QualifiedName("old", "gone")).land(build([(0, "s0", 0)], [], [1]).events)
    st = lake_status(_settings(root), None)
    gone = next(x for x in st.tables if x.table == "old.gone")
    assert not gone.captured and gone.bronze_rows == 1


def test_lsn_text_is_postgres_format() -> None:
    assert lsn_text(0x16B3748) == "0/16B3748"
    assert lsn_text((3 << 32) | 0xA) == "3/A"
    assert lsn_text(None) is None


def test_status_command_shows_the_lake_while_the_stack_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    root = tmp_path / "lake"
    _, n_events = _lake(root)
    silver.compact(root, TABLE, catalog=False)
    for k, v in {
        "CHANGELAKE_HOME": str(tmp_path / "home"),
        "CHANGELAKE_LAKE": str(root),
        "CHANGELAKE_TOPIC_PREFIX": "cl",
        "CHANGELAKE_TABLES": "s.t",
    }.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, ["status", "--json"])
    assert res.exit_code == 1, res.output  # the stack is not healthy: it is not running
    doc = json.loads(res.stdout)
    assert doc["healthy"] is False and doc["lake"]["kafka_available"] is False
    (t,) = doc["lake"]["tables"]
    assert (t["table"], t["bronze_rows"], t["lag"]) == ("s.t", n_events, None)
    assert t["silver"]["watermark_lsn"] == current(root, TABLE).watermark_lsn
    res = CliRunner().invoke(app, ["status"], env={"COLUMNS": "160"})
    assert "Kafka unreachable" in res.stdout and "s.t" in res.stdout
