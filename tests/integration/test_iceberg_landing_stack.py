"""Landing straight into Iceberg on the real stack (PostgreSQL -> Debezium -> Kafka -> landers).

Two lander processes split a three-partition CDC topic (``CHANGELAKE_LANDER_MEMBER``, static
``i/n`` or the consumer ``group``) while a workload runs, and are SIGKILLed in turn several
times (a group member the last time for good: the other takes its partitions over); afterwards
every Kafka offset is in the Iceberg tables exactly once and the table as of now, computed from Iceberg alone, equals
PostgreSQL. A lander killed at each state of the commit protocol, then rerun, is exactly-once
too, with poison messages quarantined through their own commits. Silver compacts from the
Iceberg tables while the landers run, and again afterwards: it equals PostgreSQL too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from test_landing import (
    capture_orders,
    lake_settings,
    run_lander,
    settings_env,
    topic_records,
    wait_for_records,
)

from pipelines.bronze.topics import topic_for
from pipelines.config import REPO_ROOT, Settings
from pipelines.iceberg import compaction, timetravel
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import BRONZE, QUARANTINE, SILVER
from pipelines.iceberg.timetravel import watermarked
from pipelines.naming import QualifiedName
from pipelines.shop.demo import wait_until_streamed

pytestmark = pytest.mark.integration
PARTITIONS = 3


def iceberg_settings(stack, tmp_path: Path, table: QualifiedName, **extra) -> Settings:  # noqa: ANN001
    return lake_settings(
        stack, tmp_path / "lake", table, lake_format="iceberg", batch_max_records=60, **extra
    )


def create_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def start_lander(
    settings: Settings, member: str, seconds: float = 120, name: str | None = None
) -> subprocess.Popen:
    env = settings_env(settings)
    env["CHANGELAKE_LANDER_MEMBER"] = member
    log = settings.lake_root.parent / f"lander-{name or member.replace('/', 'of')}.log"
    with open(log, "a") as err:  # a file, not a pipe nobody reads: the lander logs a lot
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines.landing", "--follow", "--max-seconds", str(seconds)],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def stop_all(stop: threading.Event, writer: threading.Thread, landers) -> None:  # noqa: ANN001
    """End the workload, then stop every lander (SIGTERM: each lands what it holds first)."""
    stop.set()
    writer.join(30)
    for proc in landers:
        proc.send_signal(signal.SIGTERM)
    for proc in landers:
        proc.wait(120)


def workload(stack, table: QualifiedName, rounds: int, stop: threading.Event) -> None:  # noqa: ANN001
    """Inserts, updates and deletes in small transactions (deletes give tombstones)."""
    with stack.pg() as con:
        for r in range(rounds):
            if stop.is_set():
                return
            lo = r * 20
            con.execute(
                f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608
                "SELECT g, g, 'row ' || g FROM generate_series(%s::int, %s::int) g",
                (lo, lo + 19),
            )
            with con.transaction():  # five updates of the round before, one delete
                con.execute(
                    f"UPDATE {table.sql} SET qty = qty + 1 WHERE id BETWEEN %s AND %s",  # noqa: S608
                    (lo - 20, lo - 16),
                )
                con.execute(f"DELETE FROM {table.sql} WHERE id = %s", (lo + 7,))  # noqa: S608
            time.sleep(0.05)


def iceberg_offsets(settings: Settings, table: QualifiedName, topic: str) -> Counter:
    catalog = open_catalog(settings)
    rows = load_table(catalog, BRONZE, table).scan().to_arrow()
    got = Counter(
        zip(rows["_kafka_partition"].to_pylist(), rows["_offset"].to_pylist(), strict=True)
    )
    try:
        q = load_table(catalog, QUARANTINE, topic).scan().to_arrow()
        got.update(zip(q["partition"].to_pylist(), q["offset"].to_pylist(), strict=True))
    except Exception:  # noqa: BLE001 - no quarantine table: nothing was quarantined
        pass
    return got


def assert_exactly_once(settings: Settings, table: QualifiedName) -> int:
    """Every non-tombstone record of the topic is in Iceberg bronze or quarantine once."""
    topic = topic_for(settings, table)
    expected = {(r.partition, r.offset) for r in topic_records(settings, topic) if r.value}
    got = iceberg_offsets(settings, table, topic)
    assert not {k: n for k, n in got.items() if n > 1}, "duplicated offsets"
    assert set(got) == expected, f"missing {sorted(expected - set(got))[:10]}"
    return len(expected)


def assert_equals_postgres(stack, settings: Settings, table: QualifiedName, now=None) -> int:  # noqa: ANN001
    """``now`` (default: ``as_of`` the far future, from Iceberg) == the PostgreSQL table."""
    with stack.pg() as con:
        rows = con.execute(f"SELECT id, qty, label FROM {table.sql}").fetchall()  # noqa: S608
    pg = pa.table({k: [r[i] for r in rows] for i, k in enumerate(("id", "qty", "label"))})
    if now is None:
        now = timetravel.as_of(settings, table, "9999-01-01T00:00:00+00:00")
    with duckdb.connect() as con:
        con.register("pg", pg)
        con.register("ice", now)
        a = con.sql("SELECT * FROM pg EXCEPT SELECT id, qty, label FROM ice").fetchall()
        b = con.sql("SELECT id, qty, label FROM ice EXCEPT SELECT * FROM pg").fetchall()
    assert not a and not b, (a[:5], b[:5])
    return len(rows)


def test_two_landers_split_a_three_partition_topic_and_survive_sigkills(stack, tmp_path) -> None:
    table = QualifiedName("iceberg_land", "split_orders")
    settings = iceberg_settings(stack, tmp_path, table)
    topic = topic_for(settings, table)
    create_topic(settings, topic, PARTITIONS)  # before Debezium creates it with one
    capture_orders(stack, table)
    stop = threading.Event()
    writer = threading.Thread(target=workload, args=(stack, table, 150, stop))
    writer.start()
    landers = {m: start_lander(settings, m) for m in ("0/2", "1/2")}
    kills, midway = Counter(), False
    try:
        for i in range(6):  # SIGKILL each member three times while the workload runs
            time.sleep(3)
            member = ("0/2", "1/2")[i % 2]
            landers[member].send_signal(signal.SIGKILL)
            landers[member].wait(30)
            kills[member] += 1
            landers[member] = start_lander(settings, member)
            if i == 2:  # silver compacts from Iceberg while the landers commit
                midway = compaction.compact(settings, table).changed
        writer.join(300)
    finally:
        stop_all(stop, writer, landers.values())
    assert kills == {"0/2": 3, "1/2": 3}
    wait_until_streamed(settings)
    for member in ("0/2", "1/2"):
        run_lander(settings, CHANGELAKE_LANDER_MEMBER=member)  # the rest, each member its share
    n = assert_exactly_once(settings, table)
    partitions = {p for p, _ in iceberg_offsets(settings, table, topic)}
    assert partitions == set(range(PARTITIONS)), partitions
    assert n > 3000
    assert assert_equals_postgres(stack, settings, table) > 0
    # the last silver snapshot, compacted from the midway one (if the transactions had landed
    # by then) + the events after its watermark
    assert compaction.compact(settings, table).changed
    silver = load_table(open_catalog(settings), SILVER, table)
    assert len(watermarked(silver)) == 1 + midway
    assert assert_equals_postgres(stack, settings, table, silver.scan().to_arrow()) > 0


def wait_exactly_once(settings: Settings, table: QualifiedName, timeout: float = 120) -> int:
    """Until the running landers have landed every record of the topic (then checked once)."""
    topic = topic_for(settings, table)
    expected = {(r.partition, r.offset) for r in topic_records(settings, topic) if r.value}
    deadline = time.monotonic() + timeout
    while set(iceberg_offsets(settings, table, topic)) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    return assert_exactly_once(settings, table)


def test_landers_in_the_consumer_group_take_over_the_partitions_of_killed_ones(
    stack, tmp_path
) -> None:  # noqa: ANN001
    """``CHANGELAKE_LANDER_MEMBER=group``: Kafka splits the partitions among the live landers.
    Each is SIGKILLed in turn and one stays dead at the end, so the survivor must land the
    partitions the dead one held, with no lander run afterwards to catch up."""
    table = QualifiedName("iceberg_land", "group_orders")
    settings = iceberg_settings(stack, tmp_path, table)
    topic = topic_for(settings, table)
    create_topic(settings, topic, PARTITIONS)
    capture_orders(stack, table)
    stop = threading.Event()
    writer = threading.Thread(target=workload, args=(stack, table, 100_000, stop))
    writer.start()
    landers = {n: start_lander(settings, "group", 300, name=n) for n in ("a", "b")}
    try:
        for victim, again in (("a", True), ("b", True), ("a", False)):  # a's last death: for good
            time.sleep(6)
            landers[victim].send_signal(signal.SIGKILL)
            landers[victim].wait(30)
            if again:
                landers[victim] = start_lander(settings, "group", 300, name=victim)
            else:
                del landers[victim]
        time.sleep(8)  # the workload goes on into every partition, a's included: b lands it
        stop.set()
        writer.join(60)
        wait_until_streamed(settings)
        n = wait_exactly_once(settings, table)  # b alone
        # ... and the transaction topic's ENDs (a held its partition when it died): until
        # they land too, the last transactions are not complete and as_of leaves them out
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                assert_equals_postgres(stack, settings, table)
                break
            except AssertionError:
                time.sleep(1)
    finally:
        stop_all(stop, writer, landers.values())
    assert {p for p, _ in iceberg_offsets(settings, table, topic)} == set(range(PARTITIONS))
    assert n > 2000
    log = (settings.lake_root.parent / "lander-b.log").read_text()
    assert "group assigned" in log
    assert compaction.compact(settings, table).changed
    assert assert_equals_postgres(stack, settings, table) > 0
    silver = load_table(open_catalog(settings), SILVER, table)
    assert assert_equals_postgres(stack, settings, table, silver.scan().to_arrow()) > 0


def test_sigkill_at_every_commit_state_with_poison_then_rerun_is_exactly_once(
    stack, tmp_path
) -> None:
    table = QualifiedName("iceberg_land", "crash_orders")
    capture_orders(stack, table)
    settings = iceberg_settings(stack, tmp_path, table, lander_decode_process=False)
    topic = topic_for(settings, table)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    total = 0
    try:
        for k, state in enumerate(("checking", "staged", "committed")):
            with stack.pg() as con:
                con.execute(
                    f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608
                    "SELECT g, g, 'x' FROM generate_series(%s::int, %s::int) g",
                    (k * 200, k * 200 + 199),
                )
            producer.send(topic, key=b"k", value=b"not json")  # a batch with quarantine
            producer.flush()
            with stack.pg() as con:
                con.execute(f"DELETE FROM {table.sql} WHERE id % 9 = 0")  # noqa: S608
            total = wait_total(settings, topic, total + 201)
            assert run_lander(settings, crash_at=f"land_{state}", skip=2) == -9, state
            run_lander(settings)
            assert_exactly_once(settings, table)
    finally:
        producer.close()
    run_lander(settings)  # nothing new: still exactly once
    assert_exactly_once(settings, table)
    assert assert_equals_postgres(stack, settings, table) == 600 - len(range(0, 600, 9))


def wait_total(settings: Settings, topic: str, at_least: int) -> int:
    wait_until_streamed(settings)
    wait_for_records(settings, topic, at_least)
    return len(topic_records(settings, topic))


def test_the_cli_lands_and_compacts_into_iceberg(stack, tmp_path) -> None:
    """``changelake land`` / ``compact`` / ``as-of`` / ``status`` with CHANGELAKE_LAKE_FORMAT=
    iceberg (``as-of`` reads Iceberg without ``--iceberg``): no Parquet bronze or silver is
    written, and the answer equals PostgreSQL."""
    import csv
    import io

    from cli_run import run as changelake

    table = QualifiedName("iceberg_land", "cli_orders")
    capture_orders(stack, table)
    settings = iceberg_settings(stack, tmp_path, table)
    with stack.pg() as con:
        con.execute(
            f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608
            "SELECT g, g, 'c' || g FROM generate_series(1, 500) g"
        )
        con.execute(f"UPDATE {table.sql} SET label = 'changed' WHERE id <= 50")  # noqa: S608
    wait_until_streamed(settings)
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("CHANGELAKE_")}
    for args in (["land"], ["compact"], ["compact", str(table)]):
        res = changelake(args, env, timeout=300)
        assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-2000:])
    silver = load_table(open_catalog(settings), SILVER, table)
    assert len(watermarked(silver)) == 1  # the second compaction found nothing new
    assert not (settings.lake_root / "bronze").exists()
    assert not (settings.lake_root / "silver").exists()
    res = changelake(
        ["as-of", str(table), "9999-01-01T00:00:00+00:00", "--format", "csv"],
        env,  # the lake
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    got = pa.table({"id": [int(r["id"]) for r in rows], "qty": [int(r["qty"]) for r in rows],
                    "label": [r["label"] for r in rows]})  # fmt: skip
    assert assert_equals_postgres(stack, settings, table, got) == 500
    assert (settings.lake_root / "iceberg" / "catalog.duckdb").exists()
    # status reads the Iceberg tables: 550 events (500 inserts, 50 updates), no lag, silver
    res = changelake(["status", "--json"], env)
    doc = json.loads(res.stdout)
    (row,) = doc["lake"]["tables"]
    assert (row["table"], row["bronze_rows"], row["lag"]) == (str(table), 550, 0), row
    assert row["silver"]["rows"] == 500 and row["silver"]["watermark_lsn"] > 0, row
    assert doc["iceberg"] is None  # no published copy: the lake is the tables
    # history from Iceberg bronze: row 7 was inserted, then its label changed
    res = changelake(["history", str(table), "7", "--format", "csv"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    versions = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [(v["_op"], v["label"]) for v in versions] == [("c", "c7"), ("u", "changed")]


def test_changelake_run_lands_and_compacts_into_iceberg(stack, tmp_path) -> None:
    """The always-on service with CHANGELAKE_LAKE_FORMAT=iceberg: its land stage commits to
    Iceberg and its compact stage keeps Iceberg silver equal to PostgreSQL as rows change."""
    table = QualifiedName("iceberg_land", "run_orders")
    capture_orders(stack, table)
    settings = iceberg_settings(stack, tmp_path, table)
    env = settings_env(settings)
    env.update(CHANGELAKE_RUN_COMPACT_MIN_INTERVAL_S="0.5")
    from cli_run import CHANGELAKE

    cmd = [str(CHANGELAKE), "run", "--no-metrics", "--no-dagster"]
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
    try:
        with stack.pg() as con:
            for lo in range(0, 600, 100):
                con.execute(
                    f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608
                    "SELECT g, g, 'r' FROM generate_series(%s::int, %s::int) g",
                    (lo, lo + 99),
                )
                con.execute(f"UPDATE {table.sql} SET qty = -qty WHERE id % 10 = 0")  # noqa: S608
        wait_until_streamed(settings)
        deadline, last = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                silver = load_table(open_catalog(settings), SILVER, table)
                assert_equals_postgres(stack, settings, table, silver.scan().to_arrow())
                break
            except Exception as exc:  # noqa: BLE001 - not there yet: compaction follows landing
                last = exc
                time.sleep(1)
        else:
            log = (tmp_path / "run.log").read_text()[-4000:]  # what the service did meanwhile
            raise AssertionError(f"silver never equalled PostgreSQL: {last!r}\n{log}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert not (settings.lake_root / "bronze").exists()


def test_dagster_bronze_and_silver_assets_land_and_compact_into_iceberg(stack, tmp_path) -> None:
    """The code location with CHANGELAKE_LAKE_FORMAT=iceberg: materialising a table's bronze and
    silver assets commits to the Iceberg tables, and the silver metadata says what it wrote."""
    import dagster as dg

    from pipelines.defs import build_definitions
    from pipelines.defs.keys import bronze_key, silver_key

    table = QualifiedName("iceberg_land", "dagster_orders")
    capture_orders(stack, table)
    settings = iceberg_settings(stack, tmp_path, table)
    with stack.pg() as con:
        con.execute(
            f"INSERT INTO {table.sql} (id, qty, label) "  # noqa: S608
            "SELECT g, g, 'd' FROM generate_series(1, 300) g"
        )
        con.execute(f"DELETE FROM {table.sql} WHERE id > 250")  # noqa: S608
    wait_until_streamed(settings)
    defs = build_definitions(settings)
    keys = {bronze_key(table), silver_key(table)}
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.keys & keys]
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, resources=defs.resources, instance=instance)
    assert result.success
    silver = load_table(open_catalog(settings), SILVER, table)
    assert assert_equals_postgres(stack, settings, table, silver.scan().to_arrow()) == 250
    meta = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == silver_key(table)
    )
    assert meta["compaction_rows"].value == 250 and meta["iceberg_snapshots"].value
    assert not (settings.lake_root / "bronze").exists()
