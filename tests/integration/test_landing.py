"""Bronze landing against the real stack (PostgreSQL -> Debezium -> Kafka -> lander).

Each test captures its own table and lands into its own lake (``tmp_path``), restricted to its
own topic, so tests do not see each other's events (except on the shared transaction topic).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.bronze import files, key_columns, landed_offsets, scan
from pipelines.bronze.lander import land
from pipelines.bronze.layout import list_lake
from pipelines.bronze.topics import topic_for
from pipelines.config import REPO_ROOT, Settings
from pipelines.naming import QualifiedName, quote_ident

pytestmark = pytest.mark.integration


def lake_settings(stack, lake: Path, table: QualifiedName, **extra) -> Settings:
    """The stack's settings with a private lake and only ``table`` captured."""
    fields = stack.settings.model_dump()
    fields.update(lake=lake, tables=(str(table),), **extra)
    return Settings(**fields)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a subprocess build the same Settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, tuple):  # tables, outbox_tables, event_aggregates
            value = ",".join(value)
        env[f"CHANGELAKE_{name.upper()}"] = str(value)
    return env


def topic_records(settings: Settings, topic: str) -> list:
    """Every record of ``topic`` (one partition per Debezium topic by our config)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for recs in consumer.poll(timeout_ms=1000).values():
                out += recs
        return out
    finally:
        consumer.close()


def wait_for_records(settings: Settings, topic: str, n: int, timeout: float = 90) -> None:
    """Wait until Debezium has put at least ``n`` records into ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            parts = consumer.partitions_for_topic(topic) if topic in consumer.topics() else None
            parts = parts or set()
            tps = [TopicPartition(topic, p) for p in parts]
            have = sum(consumer.end_offsets(tps).values()) if tps else 0
            if have >= n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: {have} of {n} records after {timeout}s")
            time.sleep(0.3)
    finally:
        consumer.close()


def bronze_offsets(lake: Path, table: QualifiedName) -> list[int]:
    with duckdb.connect() as con:
        return [r[0] for r in scan(con, lake, table).select("_offset").fetchall()]


def assert_exactly_once(settings: Settings, lake: Path, table: QualifiedName) -> int:
    """Every non-tombstone offset of the topic is in bronze or quarantine exactly once."""
    topic = topic_for(settings, table)
    records = topic_records(settings, topic)
    expected = sorted(r.offset for r in records if r.value is not None)
    got = Counter(bronze_offsets(lake, table))
    for path in (lake / "quarantine").rglob("*.parquet"):
        got.update(pq.read_table(path).column("offset").to_pylist())
    dupes = {o: c for o, c in got.items() if c > 1}
    assert not dupes, f"duplicated offsets: {dupes}"
    assert sorted(got) == expected, f"missing {sorted(set(expected) - set(got))[:10]}"
    assert landed_offsets(lake)[(topic, 0)] == records[-1].offset
    assert not list_lake(lake).incomplete
    return len(expected)


def run_lander(
    settings: Settings, crash_at: str | None = None, skip: int = 0, **env_extra: str
) -> int:
    """``python -m pipelines.landing`` once (``env_extra``: more CHANGELAKE_* variables);
    with ``crash_at``, expect the SIGKILL there; its exit status."""
    env = settings_env(settings)
    env.pop("CHANGELAKE_CRASH_AT", None)
    env.update(env_extra)
    if crash_at:
        env.update(CHANGELAKE_CRASH_AT=crash_at, CHANGELAKE_CRASH_SKIP=str(skip))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.landing"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if crash_at is None:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.returncode


def insert_rows(stack, table: QualifiedName, start: int, n: int, per_tx: int = 25) -> None:
    with stack.pg() as con:
        for lo in range(start, start + n, per_tx):
            hi = min(lo + per_tx, start + n)
            con.execute(
                f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608 - quoted identifiers
                "SELECT g, g * 10, 'row ' || g FROM generate_series(%s::int, %s::int) g",
                (lo, hi - 1),
            )


def capture_orders(stack, name: QualifiedName) -> QualifiedName:  # noqa: ANN001
    """Create ``name`` as ``(id int PRIMARY KEY, qty int, label text)``, REPLICA IDENTITY FULL,
    and capture it."""
    stack.capture(
        f"CREATE SCHEMA IF NOT EXISTS {quote_ident(name.schema)};"
        f"DROP TABLE IF EXISTS {name.sql};"
        f"CREATE TABLE {name.sql} (id int PRIMARY KEY, qty int, label text);"
        f"ALTER TABLE {name.sql} REPLICA IDENTITY FULL;",
        str(name),
    )
    return name


@pytest.fixture
def table(stack, request) -> QualifiedName:
    return capture_orders(stack, QualifiedName("bronze_it", f"Land {request.node.name[:30]}"))


def test_crash_at_every_point_then_rerun_lands_each_offset_once(stack, table, tmp_path) -> None:
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, table, batch_max_records=40)
    topic = topic_for(settings, table)
    total, next_id = 0, 0
    for point in ("mid_write", "before_rename", "after_rename", "before_commit"):
        insert_rows(stack, table, next_id, 200)
        with stack.pg() as con:  # deletes give tombstones; batches may end on one
            con.execute(f"DELETE FROM {table.sql} WHERE id %% 7 = 0 AND id >= %s", (next_id,))  # noqa: S608
        next_id += 200
        deleted = sum(1 for i in range(next_id - 200, next_id) if i % 7 == 0)
        total += 200 + 2 * deleted
        wait_for_records(settings, topic, total)
        assert run_lander(settings, crash_at=point, skip=2) == -9, point
        assert not (set(bronze_offsets_or_empty(lake, table)) - set(range(total)))
        run_lander(settings)
        assert_exactly_once(settings, lake, table)
    run_lander(settings)  # nothing new: lands nothing, still exactly once
    assert assert_exactly_once(settings, lake, table) == total - sum(
        1 for i in range(next_id) if i % 7 == 0
    )


def bronze_offsets_or_empty(lake: Path, table: QualifiedName) -> list[int]:
    return bronze_offsets(lake, table) if files(lake, table) else []


def test_poison_messages_quarantined_and_neighbours_land(stack, table, tmp_path) -> None:
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, table)
    topic = topic_for(settings, table)
    insert_rows(stack, table, 0, 5)
    wait_for_records(settings, topic, 5)
    poison = [b"not json at all", b'{"schema": 1, "payload": []}', b"\xff\xfe\x00binary", b"{}"]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for value in poison:
        producer.send(topic, key=b"k", value=value)
    producer.flush()
    producer.close()
    insert_rows(stack, table, 5, 5)
    wait_for_records(settings, topic, 14)
    result = land(settings, tables=[table])
    assert result.quarantined == len(poison)
    assert result.per_table[str(table)] == 10
    q = [pq.read_table(p) for p in (lake / "quarantine").rglob("*.parquet")]
    assert sorted(v for t in q for v in t.column("value").to_pylist()) == sorted(poison)
    assert all(t.column("topic").to_pylist() == [topic] * t.num_rows for t in q)
    with duckdb.connect() as con:
        ids = sorted(r[0] for r in scan(con, lake, table).select("id").fetchall())
    assert ids == list(range(10))
    assert_exactly_once(settings, lake, table)


def test_insert_update_delete_land_with_op_metadata_and_values(stack, table, tmp_path) -> None:
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, table)
    with stack.pg() as con:
        con.execute(f"INSERT INTO {table.sql} VALUES (1, 10, 'a'), (2, 20, 'b')")  # noqa: S608
        con.execute(f"UPDATE {table.sql} SET qty = 11, label = 'a2' WHERE id = 1")  # noqa: S608
        con.execute(f"DELETE FROM {table.sql} WHERE id = 2")  # noqa: S608
    wait_for_records(settings, topic_for(settings, table), 5)  # 2 c, u, d, tombstone
    result = land(settings, tables=[table])
    assert result.events == 4 and result.tombstones == 1 and result.quarantined == 0
    assert key_columns(lake, table) == ["id"]
    meta = pq.read_schema(files(lake, table)[0]).metadata
    assert json.loads(meta[b"changelake.key"]) == ["id"]
    assert meta[b"changelake.table"].decode() == str(table)
    with duckdb.connect() as con:
        rows = (
            scan(con, lake, table)
            .order("_offset")
            .select(
                "_op, id, qty, label, _source_ts IS NOT NULL, _lsn > 0, _tx_id > 0, "
                "_commit_date = CAST(_source_ts AS DATE), _topic, _partition"
            )
            .fetchall()
        )
        tx = scan(con, lake, "_transactions").aggregate("count(*)").fetchall()[0][0]
    topic = topic_for(settings, table)
    assert [r[:4] for r in rows] == [
        ("c", 1, 10, "a"),
        ("c", 2, 20, "b"),
        ("u", 1, 11, "a2"),
        ("d", 2, 20, "b"),
    ]
    assert all(r[4:] == (True, True, True, True, topic, 0) for r in rows)
    assert tx >= 6  # BEGIN + END of our three transactions at least
    assert_exactly_once(settings, lake, table)


def test_added_and_widened_columns_read_together(stack, table, tmp_path) -> None:
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, table)
    topic = topic_for(settings, table)
    insert_rows(stack, table, 0, 3)
    wait_for_records(settings, topic, 3)
    land(settings, tables=[table])
    with stack.pg() as con:
        con.execute(f"ALTER TABLE {table.sql} ADD COLUMN note text")
        con.execute(f"ALTER TABLE {table.sql} ALTER COLUMN qty TYPE bigint")
        con.execute(f"INSERT INTO {table.sql} VALUES (10, 1099511627776, 'big', 'new')")  # noqa: S608
    wait_for_records(settings, topic, 4)
    result = land(settings, tables=[table])
    assert result.events == 1 and not result.warnings
    with stack.pg() as con:
        con.execute(f"ALTER TABLE {table.sql} ALTER COLUMN label TYPE int USING 7")
        con.execute(f"INSERT INTO {table.sql} VALUES (11, 1, 8, 'int label')")  # noqa: S608
    wait_for_records(settings, topic, 5)
    result = land(settings, tables=[table])
    assert result.events == 1
    assert any("label" in w for w in result.warnings), result.warnings  # reported, still landed
    with duckdb.connect() as con:
        got = scan(con, lake, table).order("_offset").select("id, qty, note").fetchall()
    assert got == [
        (0, 0, None),
        (1, 10, None),
        (2, 20, None),
        (10, 2**40, "new"),
        (11, 1, "int label"),
    ]
    assert_exactly_once(settings, lake, table)


def test_follow_mode_lands_live_events_and_topics_created_later(stack, table, tmp_path) -> None:
    lake = tmp_path / "lake"
    later = QualifiedName(table.schema, f"{table.table} later")
    settings = lake_settings(stack, lake, table)
    settings = Settings(**{**settings.model_dump(), "tables": (str(table), str(later))})
    insert_rows(stack, table, 0, 30)
    wait_for_records(settings, topic_for(settings, table), 30)
    box: dict = {}
    worker = threading.Thread(
        target=lambda: box.update(r=land(settings, until_caught_up=False, max_seconds=45))
    )
    worker.start()
    time.sleep(5)
    insert_rows(stack, table, 30, 30)  # live events on a topic the lander already reads
    stack.capture(
        f"CREATE TABLE {later.sql} (id int PRIMARY KEY, qty int, label text);", str(later)
    )
    insert_rows(stack, later, 0, 7)  # the topic is created by this first event
    worker.join(timeout=120)
    assert not worker.is_alive()
    result = box["r"]
    assert result.per_table == {str(table): 60, str(later): 7} | (
        {"_transactions": result.per_table["_transactions"]}
        if "_transactions" in result.per_table
        else {}
    )
    assert assert_exactly_once(settings, lake, table) == 60
    assert assert_exactly_once(settings, lake, later) == 7


def test_cli_land_prints_summary(stack, table, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    lake = tmp_path / "lake"
    monkeypatch.setenv("CHANGELAKE_LAKE", str(lake))
    monkeypatch.setenv("CHANGELAKE_TABLES", str(table))
    insert_rows(stack, table, 0, 3)
    wait_for_records(stack.settings, topic_for(stack.settings, table), 3)
    out = CliRunner().invoke(app, ["land"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "landed 3 events" in out.output and str(table) in out.output
    assert len(bronze_offsets(lake, table)) == 3
