"""Issue 16: the shop's domain events (transactional outbox) through the real connector chain
(HeaderFrom -> Outbox Event Router -> HeaderToValue) into bronze ``_events/order``.

One shop workload, one private lake: the lander is SIGKILLed mid-batch and rerun; every event
offset must then be in bronze (or quarantine) exactly once, version-2 events sit beside
version-1 events in the same table, malformed messages are quarantined byte for byte, and each
event carries the commit time, transaction id and commit LSN of the transaction that wrote it
(checked against the CDC events of ``shop.orders`` from the same transactions).
"""

from __future__ import annotations

import random
from decimal import Decimal

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource
from test_landing import run_lander

from pipelines.bronze import scan
from pipelines.bronze.topics import event_topics, topic_for
from pipelines.claimcheck import CLAIMS, Policy, inline_limit
from pipelines.config import Settings
from pipelines.decode.events import event_table
from pipelines.naming import QualifiedName
from pipelines.shop.demo import wait_until_streamed
from pipelines.shop.migrate import SHOP_TABLES, shop_ddl
from pipelines.shop.outbox import AGGREGATE, OUTBOX, emit
from pipelines.shop.seed import seed_shop
from pipelines.shop.workload import run_workload
from tests.faults.faultkit import exactly_once

pytestmark = pytest.mark.integration
ORDERS = QualifiedName("shop", "orders")
EVENTS = event_table(AGGREGATE)


@pytest.fixture(scope="module")
def shop(stack):
    with stack.outbox():
        stack.capture(shop_ddl(), *(str(t) for t in SHOP_TABLES))
        yield stack


def _last_value(settings: Settings, topic: str) -> bytes:
    """The newest record's value of ``topic`` (a real event, to cut in half)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, consumer.end_offsets([tp])[tp] - 1)
        for _ in range(30):
            if recs := consumer.poll(timeout_ms=1000).get(tp):
                return recs[-1].value
        raise AssertionError(f"{topic}: no record read")
    finally:
        consumer.close()


def test_outbox_events_land_exactly_once_under_sigkill_with_v2_and_quarantine(
    shop, tmp_path
) -> None:
    settings = shop.settings
    with shop.pg() as pg:
        (before,) = pg.execute("SELECT coalesce(max(order_id), 0) FROM shop.orders").fetchone()
    work = run_workload(settings, rate=40, duration=4, connections=2, seed=16)
    assert work.failed == 0 and work.by_action["place_order"] > 0, work.errors[:3]
    # the shop's next release pays orders with version-2 events (a new field, item_count)
    with psycopg.connect(settings.pg_dsn()) as conn:
        v2 = [
            r[0]
            for r in conn.execute(
                "SELECT order_id FROM shop.orders WHERE status = 'placed' AND order_id > %s "
                "ORDER BY order_id LIMIT 3",
                (before,),
            ).fetchall()
        ]
        for oid in v2:
            with conn.transaction():
                conn.execute("UPDATE shop.orders SET status = 'paid' WHERE order_id = %s", (oid,))
                emit(conn, oid, "OrderPaid", version=2)
    assert v2, "no placed order to pay with a version-2 event"
    wait_until_streamed(settings)
    (topic,) = event_topics(settings)
    real = _last_value(settings, topic)
    poison = [
        b"not json at all",
        real[: len(real) // 2],
        b'{"schema":{"type":"struct"},"payload":{}}',
    ]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for value in poison:
        producer.send(topic, key=b"k", value=value)
    producer.flush()
    producer.close()

    lake = tmp_path / "lake"
    fields = settings.model_dump() | {"lake": lake, "tables": (str(ORDERS),)}
    lander = Settings(**fields | {"batch_max_records": 20})
    assert run_lander(lander, crash_at="after_rename", skip=3) == -9  # SIGKILL mid-batch
    run_lander(lander)
    for t in (topic, topic_for(lander, ORDERS)):
        once = exactly_once(lander, [t])
        assert not (once.duplicated or once.missing or once.invented), (t, once)
    rep = exactly_once(lander, [topic])
    assert rep.offsets > len(poison)

    with duckdb.connect() as con:
        ev = scan(con, lake, EVENTS)
        ev.create_view("ev")
        scan(con, lake, ORDERS).create_view("orders")
        n, ids, v2_rows, v2_ok, v1_null = ev.aggregate(
            "count(*), count(DISTINCT _event_id), count(*) FILTER (_schema_version = 2), "
            "count(*) FILTER (_schema_version = 2 AND item_count = len(items)), "
            "count(*) FILTER (_schema_version = 1 AND item_count IS NULL)"
        ).fetchone()
        assert n == rep.offsets - len(poison) and ids == n  # each event once, ids unique
        assert v2_rows == v2_ok == len(v2) and v1_null == n - len(v2)
        placed = ev.filter(f"_event_type = 'OrderPlaced' AND order_id > {before}").count("*")
        assert placed.fetchone()[0] == work.by_action["place_order"]
        # the event's transaction is the state change's: same commit time, tx id, commit LSN
        mismatched = con.sql(
            "SELECT count(*) FROM ev LEFT JOIN (SELECT DISTINCT _tx_id, _source_ts, _commit_lsn "
            "FROM orders) o USING (_tx_id) WHERE ev.order_id > $b AND (o._tx_id IS NULL OR "
            "o._source_ts <> ev._source_ts OR o._commit_lsn IS DISTINCT FROM ev._commit_lsn)",
            params={"b": before},
        ).fetchone()[0]
        assert mismatched == 0
        unplaced = ev.filter("_source_ts IS NULL OR _lsn IS NULL OR _tx_id IS NULL")
        assert unplaced.count("*").fetchone()[0] == 0
    q = [pq.read_table(p) for p in (lake / "quarantine").rglob("*.parquet")]
    assert sorted(v for t in q for v in t.column("value").to_pylist()) == sorted(poison)
    assert all(r for t in q for r in t.column("error").to_pylist())
    # the outbox is cleaned by the application, and its deletes never reach Kafka
    with shop.pg() as pg:
        assert pg.execute(f"SELECT count(*) FROM {OUTBOX.sql}").fetchone()[0] == 0  # noqa: S608
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        assert topic_for(settings, OUTBOX) not in consumer.topics()
    finally:
        consumer.close()


CLAIM_LIMIT = 256 * 1024  # the event topic's lowered max.message.bytes for this test
CLAIM_ITEMS = 5000


def _topic_limit(settings: Settings, topic: str, limit: int | None) -> None:
    """Set (or, with None, remove) ``topic``'s max.message.bytes on the real broker."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        op = ("SET", str(limit)) if limit else ("DELETE", None)
        resource = ConfigResource("TOPIC", topic, configs={"max.message.bytes": op})
        admin.alter_configs([resource], incremental=True)
    finally:
        admin.close()


def _place(conn: psycopg.Connection, items: int, policy: Policy) -> tuple[int, str]:
    """One order of ``items`` lines and its OrderPlaced event, in one transaction."""
    with conn.transaction():
        (oid,) = conn.execute(
            "INSERT INTO shop.orders (customer_id, warehouse_id, total_amount) SELECT "
            "(SELECT min(customer_id) FROM shop.customers), "
            "(SELECT min(warehouse_id) FROM shop.warehouses), 0 RETURNING order_id"
        ).fetchone()
        conn.execute(
            "INSERT INTO shop.order_items (order_id, line_no, product_id, quantity, unit_price) "
            "SELECT %s, g, p.product_id, 1 + g %% 3, p.price FROM generate_series(1, %s) g "
            "JOIN (SELECT product_id, price, row_number() OVER (ORDER BY product_id) - 1 AS rn "
            "FROM shop.products) p ON p.rn = g %% 20",
            (oid, items),
        )
        conn.execute(
            "UPDATE shop.orders SET total_amount = (SELECT sum(quantity * unit_price) FROM "
            "shop.order_items WHERE order_id = %s) WHERE order_id = %s",
            (oid, oid),
        )
        return oid, emit(conn, oid, "OrderPlaced", claims=policy)


def test_an_order_too_large_for_kafka_lands_whole_by_claim_check(shop, tmp_path) -> None:
    settings = shop.settings
    (topic,) = event_topics(settings)
    lake = tmp_path / "lake"
    policy = Policy(lake, inline_limit(CLAIM_LIMIT))
    with psycopg.connect(settings.pg_dsn()) as conn:
        seed_shop(conn, random.Random(16))
        conn.commit()
        small, small_id = _place(conn, 3, policy)  # inline; creates the topic if needed
        wait_until_streamed(settings)
        _topic_limit(settings, topic, CLAIM_LIMIT)  # the broker now refuses a larger event
        try:
            big, big_id = _place(conn, CLAIM_ITEMS, policy)
            (inline_bytes,) = conn.execute(
                "SELECT octet_length(jsonb_agg(i)::text) FROM shop.order_items i "
                "WHERE order_id = %s",
                (big,),
            ).fetchone()
            assert inline_bytes > CLAIM_LIMIT  # the items alone would not fit in one message
            wait_until_streamed(settings)
        finally:
            _topic_limit(settings, topic, None)
        expected = conn.execute(
            "SELECT line_no, product_id, quantity, unit_price::text FROM shop.order_items "
            "WHERE order_id = %s ORDER BY line_no",
            (big,),
        ).fetchall()
    claim = lake / CLAIMS / "order" / f"{big_id}.json"
    assert claim.stat().st_size > CLAIM_LIMIT
    assert not (lake / CLAIMS / "order" / f"{small_id}.json").exists()
    # what Kafka carries for the big order: the reference, under the lowered limit
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        sent = {}
        while consumer.position(tp) < end:
            for rec in consumer.poll(timeout_ms=2000).get(tp, []):
                if big_id.encode() in rec.value:
                    sent[rec.offset] = rec.value
    finally:
        consumer.close()
    ((_, value),) = sent.items()
    assert len(value) < CLAIM_LIMIT and b'"claim_check"' in value

    lander = Settings(**settings.model_dump() | {"lake": lake, "tables": (str(ORDERS),)})
    run_lander(lander)
    once = exactly_once(lander, [topic])
    assert not (once.duplicated or once.missing or once.invented), once
    quarantined = [
        v
        for f in (lake / "quarantine").rglob("*.parquet")
        for v in pq.read_table(f)["value"].to_pylist()
    ]  # the earlier test's poison may sit on the same topic; these two events are not there
    assert not [v for v in quarantined if big_id.encode() in v or small_id.encode() in v]
    with duckdb.connect() as con:
        ev = scan(con, lake, EVENTS)
        assert str(ev.types[ev.columns.index("items")]).endswith("[]")  # typed, not text
        rows = ev.filter(f"_event_id IN ('{big_id}', '{small_id}')").order("order_id")
        got = rows.select("order_id, total_amount, len(items)").fetchall()
        (items,) = ev.filter(f"_event_id = '{big_id}'").select("items").fetchone()
    assert [(o, n) for o, _, n in got] == [(small, 3), (big, CLAIM_ITEMS)]
    total = sum(q * Decimal(p) for _, _, q, p in expected)
    assert Decimal(got[1][1]) == total
    landed = [(i["line_no"], i["product_id"], i["quantity"], i["unit_price"]) for i in items]
    assert landed == expected  # every line, complete
