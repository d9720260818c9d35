"""Domain events (outbox) decoded and landed from messages recorded off the REAL connector chain
(``python tests/fixtures/record_debezium.py --outbox``: HeaderFrom -> Outbox Event Router ->
HeaderToValue on the shop's ``shop.outbox``), replayed through ``land_batch`` without Kafka."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.bronze import files, scan
from pipelines.bronze.batch import land_batch
from pipelines.bronze.topics import lander_topics
from pipelines.config import Settings
from pipelines.contract import event_topic, topic_for
from pipelines.dbtmodels import event_rows
from pipelines.decode import RawMessage, decode_batch
from pipelines.decode.events import EVENT_METADATA, event_table
from pipelines.decode.replay import read_jsonl
from pipelines.naming import QualifiedName
from pipelines.shop.outbox import AGGREGATE, ORDER_EVENT_SCHEMA
from pipelines.stack.connector_config import render

pytestmark = pytest.mark.unit
RECORDING = Path(__file__).parent.parent / "fixtures" / "debezium" / "outbox.jsonl"
PREFIX = "ob"  # the recorder's topic prefix
TABLE = event_table(AGGREGATE)
NOW = datetime(2026, 12, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def recorded() -> list[RawMessage]:
    msgs = read_jsonl(RECORDING)
    assert len(msgs) >= 10 and {m.topic for m in msgs} == {f"{PREFIX}.events.order"}
    return msgs


def _value(msg: RawMessage) -> dict:
    return orjson.loads(msg.value)


def _with(msg: RawMessage, offset: int, value: bytes | None) -> RawMessage:
    return RawMessage(msg.topic, msg.partition, offset, msg.timestamp_ms, msg.key, value)


def test_recorded_events_decode_typed_with_their_transaction(recorded) -> None:
    batch = decode_batch(recorded, ingested_at=NOW, topic_prefix=PREFIX)
    assert batch.quarantine.num_rows == 0 and list(batch.tables) == [TABLE]
    t = batch.tables[TABLE]
    assert t.num_rows == len(recorded)
    assert t.schema.names[-len(EVENT_METADATA) :] == EVENT_METADATA.names
    for f in EVENT_METADATA:
        assert t.schema.field(f.name).type == f.type, f.name
    assert pa.types.is_integer(t.schema.field("order_id").type)
    assert t.schema.field("total_amount").type == pa.string()  # exact decimal text
    assert pa.types.is_list(t.schema.field("items").type)
    rows = t.to_pylist()
    types = {r["_event_type"] for r in rows}
    assert {"OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled"} <= types
    for r in rows:
        assert re.fullmatch(r"[0-9a-f-]{36}", r["_event_id"])
        assert r["_aggregate_type"] == "order" and r["_aggregate_id"] == str(r["order_id"])
        assert r["_source_ts"] is not None and r["_lsn"] > 0 and r["_tx_id"] > 0
        assert r["_topic"] == f"{PREFIX}.events.order"
    assert len({r["_event_id"] for r in rows}) == len(rows)
    lsns = [r["_lsn"] for r in rows]
    assert lsns == sorted(lsns)  # one partition, in commit order
    assert orjson.loads(t.schema.metadata[b"changelake.key"]) == ["_event_id"]


def test_version_2_lands_beside_version_1_in_the_same_bronze_table(recorded, tmp_path) -> None:
    v1 = [m for m in recorded if _value(m)["payload"]["schema_version"] == 1]
    v2 = [m for m in recorded if _value(m)["payload"]["schema_version"] == 2]
    assert v1 and v2
    lake = tmp_path / "lake"
    land_batch(lake, v1, topic_prefix=PREFIX)  # an earlier file of version 1 only
    land_batch(lake, v2, topic_prefix=PREFIX)  # then the new version, its own file
    assert len(files(lake, TABLE)) == 2
    with duckdb.connect() as con:
        rows = (
            scan(con, lake, TABLE)
            .aggregate(
                "_schema_version, count(*), count(item_count), "
                "count(*) FILTER (item_count = len(items))",
                "_schema_version",
            )
            .order("_schema_version")
            .fetchall()
        )
    assert rows == [(1, len(v1), 0, 0), (2, len(v2), len(v2), len(v2))]


def test_malformed_events_are_quarantined_raw_and_neighbours_land(recorded) -> None:
    good = recorded[0]
    env = _value(good)
    no_id = orjson.loads(good.value)
    del no_id["payload"]["event_id"]
    no_source = orjson.loads(good.value)
    no_source["payload"]["source"] = None
    bad_value = orjson.loads(good.value)
    bad_value["payload"]["payload"]["order_id"] = "not a number"
    not_object = orjson.loads(good.value)
    not_object["payload"]["payload"] = "plain text"
    not_object["schema"]["fields"][0] = {"type": "string", "optional": True, "field": "payload"}
    assert env["schema"]["fields"][0]["field"] == "payload"
    poison = {
        b"not json": "invalid JSON",
        good.value[:40]: "invalid JSON",
        orjson.dumps(no_id): "event without event_id",
        orjson.dumps(no_source): "source block",
        orjson.dumps(bad_value): "contradicts its schema",
        orjson.dumps(not_object): "not a JSON object",
    }
    msgs = [_with(good, 0, good.value)]
    msgs += [_with(good, i, v) for i, v in enumerate(poison, start=1)]
    msgs.append(_with(recorded[1], len(msgs), recorded[1].value))
    batch = decode_batch(msgs, ingested_at=NOW, topic_prefix=PREFIX)
    assert batch.tables[TABLE]["_offset"].to_pylist() == [0, len(msgs) - 1]
    q = batch.quarantine.to_pylist()
    assert [r["value"] for r in q] == list(poison)
    for r, reason in zip(q, poison.values(), strict=True):
        assert reason in r["error"], r["error"]
        assert (r["topic"], r["partition"]) == (good.topic, good.partition)


def test_event_topics_are_declared_beside_tables_and_only_the_outbox_is_routed() -> None:
    s = Settings(  # explicit: the session stack exports its own prefix and aggregates
        _env_file=None,
        tables="shop.orders",
        outbox_tables="shop.outbox",
        event_aggregates="order",
        topic_prefix="changelake",
    )
    assert event_topic(s, "order") == "changelake.events.order"
    topics = lander_topics(s)
    assert "changelake.events.order" in topics
    assert topic_for(s, QualifiedName("shop", "outbox")) not in topics  # never landed as table
    cfg = render(s)
    outbox = re.compile(cfg["predicates.outbox.pattern"])
    assert outbox.fullmatch(topic_for(s, QualifiedName("shop", "outbox")))
    assert not outbox.fullmatch(topic_for(s, QualifiedName("shop", "orders")))
    events = re.compile(cfg["predicates.event.pattern"])
    assert events.fullmatch(event_topic(s, "order"))
    assert re.fullmatch(cfg["topic.creation.events.include"], event_topic(s, "order"))
    assert cfg["topic.creation.events.cleanup.policy"] == "delete"
    assert cfg["transforms"].split(",") == [
        "outboxtombstone",  # the outbox's tombstones renamed ...
        "dropoutboxtombstone",  # ... and dropped (HeaderFrom fails on a null value)
        "outboxsource",
        "outbox",
        "eventsource",
    ]
    tomb = re.compile(cfg["transforms.outboxtombstone.regex"])
    assert tomb.fullmatch(topic_for(s, QualifiedName("shop", "outbox")))
    assert not tomb.fullmatch(topic_for(s, QualifiedName("shop", "orders")))  # its tombstones stay
    renamed = cfg["transforms.outboxtombstone.replacement"]
    assert re.fullmatch(cfg["predicates.outboxtombstone.pattern"], renamed)
    assert cfg["transforms.outbox.route.topic.replacement"] == "changelake.events.$1"
    none = render(Settings(_env_file=None, outbox_tables="", event_aggregates=""))
    assert re.compile(none["predicates.outbox.pattern"]).fullmatch("changelake.shop.outbox") is None
    assert not [
        t for t in lander_topics(Settings(_env_file=None, event_aggregates="")) if ".events." in t
    ]
    with pytest.raises(ValueError, match="aggregate"):
        Settings(_env_file=None, event_aggregates="Order Lines")


def test_dbt_event_rows_union_versions_and_empty_before_any_event(recorded, tmp_path) -> None:
    lake = tmp_path / "lake"
    empty = event_rows(lake, AGGREGATE, ORDER_EVENT_SCHEMA)
    assert empty.num_rows == 0 and empty.schema == ORDER_EVENT_SCHEMA
    land_batch(lake, recorded, topic_prefix=PREFIX)
    got = event_rows(lake, AGGREGATE, ORDER_EVENT_SCHEMA)
    assert got.schema == ORDER_EVENT_SCHEMA and got.num_rows == len(recorded)
    landed = pq.read_table(files(lake, TABLE)[0])
    assert got["_event_id"].to_pylist() == landed["_event_id"].to_pylist()
