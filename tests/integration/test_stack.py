"""The local CDC stack against the real programs: PostgreSQL, Kafka KRaft, Connect + Debezium."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kafka import KafkaConsumer
from psycopg import sql

from pipelines import stack as stack_api
from pipelines.stack import connect, postgres
from pipelines.stack.layout import Layout

pytestmark = pytest.mark.integration


def consume(settings, topic: str, until, timeout: float = 30.0) -> list:  # noqa: ANN001
    """Read ``topic`` from the beginning until ``until(records)`` holds or ``timeout`` passes."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
        fetch_max_bytes=settings.max_message_bytes,
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not consumer.subscription():
                if topic in consumer.topics():
                    consumer.subscribe([topic])
                else:
                    time.sleep(0.5)
                    continue
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
            if until(records):
                return records
    finally:
        consumer.close()
    raise AssertionError(
        f"{topic}: condition not met within {timeout}s; got {len(records)} records"
    )


def values(records: list) -> list[dict | None]:
    return [None if r.value is None else json.loads(r.value) for r in records]


def ops(records: list) -> list[str | None]:
    return [None if v is None else v["payload"]["op"] for v in values(records)]


def ident(table: str) -> sql.Identifier:
    return sql.Identifier("public", table)


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


def test_status_reports_all_healthy_and_connector_running(stack) -> None:
    st = stack_api.status(stack.settings)
    assert st.healthy, st
    assert {c.name for c in st.components if c.up} == {"postgres", "kafka", "connect"}
    assert all(c.pid and c.rss_bytes > 0 for c in st.components)
    assert st.connector_state == "RUNNING" and st.task_states == ("RUNNING",)
    assert st.slot_lag_bytes is not None


def test_insert_update_delete_arrive_with_schema_and_tombstone(stack) -> None:
    table = unique("stack_crud")
    stack.capture(f"CREATE TABLE public.{table} (id int PRIMARY KEY, name text)", f"public.{table}")
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'a')").format(ident(table)))
        conn.execute(sql.SQL("UPDATE {} SET name = 'b' WHERE id = 1").format(ident(table)))
        conn.execute(sql.SQL("DELETE FROM {} WHERE id = 1").format(ident(table)))
    recs = consume(
        stack.settings,
        stack.topic(f"public.{table}"),
        lambda rs: ops(rs)[-4:] == ["c", "u", "d", None],
        timeout=30,
    )
    vals = values(recs)
    assert ops(recs) == ["c", "u", "d", None]
    for v, key in zip(vals[:3], (r.key for r in recs[:3]), strict=True):
        assert v["schema"]["type"] == "struct" and v["schema"]["name"].endswith(".Envelope")
        assert json.loads(key)["schema"]["fields"][0]["field"] == "id"
    assert vals[0]["payload"]["after"] == {"id": 1, "name": "a"}
    assert vals[1]["payload"]["before"] is None or vals[1]["payload"]["before"]["id"] == 1
    assert vals[1]["payload"]["after"]["name"] == "b"
    assert vals[2]["payload"]["before"]["id"] == 1 and vals[2]["payload"]["after"] is None
    assert json.loads(recs[3].key)["payload"] == {"id": 1}


def test_keyless_table_streams_on_a_delete_policy_topic_and_the_task_survives(stack) -> None:
    """Debezium sends a key-less table's events without a Kafka key; on a compacted topic Kafka
    would reject them and fail the task, so such topics are created with cleanup.policy=delete."""
    table = unique("stack_keyless")
    stack.capture(f"CREATE TABLE public.{table} (note text)", f"public.{table}")
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES ('x'), ('x')").format(ident(table)))
    topic = stack.topic(f"public.{table}")
    recs = consume(stack.settings, topic, lambda rs: ops(rs).count("c") == 2, timeout=60)
    assert all(r.key is None for r in recs)
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.settings.bootstrap_servers)
    try:
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    assert res["topic"][topic]["cleanup.policy"]["value"] == "delete", res
    st = stack_api.status(stack.settings)
    assert st.connector_state == "RUNNING" and st.task_states == ("RUNNING",)


def test_numeric_and_timestamptz_schema_types(stack) -> None:
    table = unique("stack_types")
    stack.capture(
        f"CREATE TABLE public.{table} (id int PRIMARY KEY, amount numeric(12,2), at timestamptz)",
        f"public.{table}",
    )
    with stack.pg() as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (1, 12345.67, '2026-01-02 03:04:05+00')").format(
                ident(table)
            )
        )
    recs = consume(stack.settings, stack.topic(f"public.{table}"), lambda rs: len(rs) >= 1)
    value = json.loads(recs[0].value)
    after = next(f for f in value["schema"]["fields"] if f["field"] == "after")
    fields = {f["field"]: f for f in after["fields"]}
    assert fields["amount"]["name"] == "org.apache.kafka.connect.data.Decimal"
    assert fields["amount"]["parameters"]["scale"] == "2"
    assert fields["at"]["name"] == "io.debezium.time.ZonedTimestamp"
    assert value["payload"]["after"]["at"] == "2026-01-02T03:04:05.000000Z"


def test_odd_table_name_topic_matches_topic_for(stack) -> None:
    table = unique('Odd "Näme" x')
    qname = f'public."{table.replace(chr(34), chr(34) * 2)}"'
    stack.capture(f"CREATE TABLE {qname} (id int PRIMARY KEY)", qname)
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (7)").format(ident(table)))
    topic = stack.topic(qname)
    assert '"' not in topic and " " not in topic
    recs = consume(stack.settings, topic, lambda rs: len(rs) >= 1)
    assert json.loads(recs[0].value)["payload"]["source"]["table"] == table


def test_five_megabyte_value_arrives_intact(stack) -> None:
    table = unique("stack_big")
    stack.capture(f"CREATE TABLE public.{table} (id int PRIMARY KEY, body text)", f"public.{table}")
    body = (uuid.uuid4().hex * (5 * 1024 * 1024 // 32 + 1))[: 5 * 1024 * 1024]
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, %s)").format(ident(table)), (body,))
    recs = consume(
        stack.settings, stack.topic(f"public.{table}"), lambda rs: len(rs) >= 1, timeout=60
    )
    assert json.loads(recs[0].value)["payload"]["after"]["body"] == body


def test_up_twice_is_noop_and_down_up_resumes_without_snapshot(stack) -> None:
    table = unique("stack_resume")
    stack.capture(f"CREATE TABLE public.{table} (id int PRIMARY KEY)", f"public.{table}")
    settings = stack.settings  # after capture: includes the new table
    layout = Layout.of(settings)
    config_before = connect.connector_config(settings)
    topic = stack.topic(f"public.{table}")
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(ident(table)))
    consume(settings, topic, lambda rs: len(rs) >= 1)
    pids = (
        postgres.pid(layout),
        stack_api.status(settings).component("kafka").pid,
        stack_api.status(settings).component("connect").pid,
    )
    started = time.monotonic()
    stack_api.up(settings)
    assert time.monotonic() - started < 10
    assert connect.connector_config(settings) == config_before  # nothing re-registered
    assert pids == (
        postgres.pid(layout),
        stack_api.status(settings).component("kafka").pid,
        stack_api.status(settings).component("connect").pid,
    )

    stack_api.down(settings)
    assert not stack_api.status(settings).healthy
    with pytest.raises(Exception):  # noqa: B017 - any connection error: PostgreSQL is down
        stack.pg()
    stack_api.up(settings)
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (2)").format(ident(table)))
    recs = consume(settings, topic, lambda rs: len(rs) >= 2, timeout=90)
    vals = values(recs)
    assert [v["payload"]["op"] for v in vals] == ["c", "c"]  # no snapshot reads ("r") re-emitted
    assert [v["payload"]["after"]["id"] for v in vals] == [1, 2]
    with stack.pg() as conn:
        slots = conn.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (settings.slot_name,)
        ).fetchone()
    assert slots == (1,)
    assert connect.running(connect.connector_status(settings))


@pytest.mark.parametrize("component", ["postgres", "kafka"])
def test_restart_component_then_streaming_continues(stack, component: str) -> None:
    table = unique(f"stack_restart_{component}")
    stack.capture(f"CREATE TABLE public.{table} (id int PRIMARY KEY)", f"public.{table}")
    settings = stack.settings
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(ident(table)))
    old_pid = stack_api.status(settings).component(component).pid
    stack_api.restart_component(settings, component)
    st = stack_api.status(settings)
    assert st.healthy and st.component(component).pid != old_pid
    with stack.pg() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (2)").format(ident(table)))
    recs = consume(settings, stack.topic(f"public.{table}"), lambda rs: len(rs) >= 2, timeout=90)
    ids = [v["payload"]["after"]["id"] for v in values(recs)]
    assert sorted(set(ids)) == [1, 2]  # at-least-once across the restart; the lake dedupes
