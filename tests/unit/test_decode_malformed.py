"""Bad input never raises: each bad message goes to quarantine with its reason, byte for byte,
and its neighbours decode. The inputs are recorded real messages, damaged on purpose."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.decode import RawMessage, arrow_type_for, decode_batch
from pipelines.decode.envelope import plan_for
from pipelines.decode.replay import read_jsonl
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"
AT = datetime(2026, 1, 1, tzinfo=UTC)
TYPEZOO = QualifiedName("zoo", "typezoo")


def decode(msgs: list[RawMessage]):  # noqa: ANN201
    return decode_batch(msgs, ingested_at=AT, topic_prefix="zoo")


def typezoo_changes() -> list[RawMessage]:
    return [m for m in read_jsonl(RECORDED) if m.topic == "zoo.zoo.typezoo" and m.value]


def insert_of(id_: int) -> RawMessage:
    for m in typezoo_changes():
        p = orjson.loads(m.value)["payload"]
        if p["op"] == "c" and p["after"]["id"] == id_:
            return m
    raise LookupError(id_)


def damaged(msg: RawMessage, old: bytes, new: bytes, offset: int) -> RawMessage:
    assert old in msg.value
    return replace(msg, value=msg.value.replace(old, new, 1), offset=offset)


def test_bad_messages_are_quarantined_and_neighbours_decode() -> None:
    good = typezoo_changes()
    ten = insert_of(10)
    bad = [
        replace(ten, value=ten.value[: len(ten.value) // 2], offset=1001),  # cut JSON
        replace(ten, value=orjson.dumps(orjson.loads(ten.value)["payload"]), offset=1002),
        damaged(ten, b'"c_integer":-2147483648', b'"c_integer":"abc"', 1003),
        damaged(ten, b'"c_numeric_fixed":"', b'"c_numeric_fixed":"!!', 1004),
        damaged(ten, b'"op":"c"', b'"op":"x"', 1005),
        damaged(ten, b'"c_int_array":[1,null,-3]', b'"c_int_array":{"a":1}', 1006),
        replace(ten, value=b"null", offset=1007),
    ]
    b = decode([*good, *bad])
    q = b.quarantine.to_pylist()
    assert [r["offset"] for r in q] == list(range(1001, 1008))
    assert [r["value"] for r in q] == [m.value for m in bad]  # byte for byte
    assert all(r["key"] == ten.key and r["topic"] == ten.topic for r in q)
    errors = [r["error"] for r in q]
    assert "invalid JSON" in errors[0]
    assert "envelope" in errors[1]
    assert "c_integer" in errors[2]
    assert "c_numeric_fixed" in errors[3] and "base64" in errors[3]
    assert "op" in errors[4]
    assert "c_int_array" in errors[5]
    assert "envelope" in errors[6]
    assert all(r["quarantined_at"] == AT for r in q)
    assert b.tables[TYPEZOO].num_rows == len(good)
    assert b.quarantine.schema.field("kafka_ts").type == pa.timestamp("ms", "UTC")


def test_decimal_beyond_its_precision_is_quarantined() -> None:
    one = insert_of(12)  # c_numeric_fixed = -0.00001, numeric(30,5)
    # 31 nines do not fit numeric(30,5): a value contradicting its schema
    b64 = base64.b64encode(int("9" * 31).to_bytes(13, "big", signed=True)).decode()
    bad = damaged(one, b'"c_numeric_fixed":"/w=="', f'"c_numeric_fixed":"{b64}"'.encode(), 5000)
    b = decode([one, bad])
    assert b.tables[TYPEZOO].num_rows == 1
    assert "precision 30" in b.quarantine.column("error")[0].as_py()


def test_unknown_semantic_type_falls_back_with_a_warning() -> None:
    ten = insert_of(10)
    # (before and after share the Value schema: rename it in both)
    odd = replace(ten, value=ten.value.replace(b"io.debezium.data.Uuid", b"com.example.Strange"))
    b = decode([odd])
    assert b.quarantine.num_rows == 0
    t = b.tables[TYPEZOO]
    assert t["c_uuid"].to_pylist() == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]
    assert any("com.example.Strange" in w and "c_uuid" in w for w in b.warnings)


def test_malformed_transaction_message_is_quarantined() -> None:
    tx = [m for m in read_jsonl(RECORDED) if m.topic == "zoo.transaction"]
    bad = damaged(tx[0], b'"status":"BEGIN"', b'"status":"MAYBE"', 999)
    b = decode([*tx, bad])
    assert b.transactions.num_rows == len(tx)
    assert b.quarantine.column("offset").to_pylist() == [999]


def test_tombstones_and_heartbeats_are_counted_not_landed() -> None:
    msgs = [m for m in read_jsonl(RECORDED) if m.value is None or "heartbeat" in m.topic]
    b = decode(msgs)
    assert b.tombstones == 3 and b.heartbeats >= 1
    assert b.tables == {} and b.quarantine.num_rows == 0 and b.transactions is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=200), st.just(b'{"schema":{},"payload":{}}')),
                max_size=10))  # fmt: skip
def test_garbage_never_raises(values: list[bytes]) -> None:
    msgs = [RawMessage("zoo.x.y", 0, i, None, None, v) for i, v in enumerate(values)]
    b = decode(msgs)
    assert b.quarantine.num_rows == len(values)
    assert b.tables == {}


def test_schema_is_planned_once_per_distinct_schema() -> None:
    msgs = typezoo_changes()
    decode(msgs)
    before = plan_for.cache_info()
    decode(msgs * 5)
    after = plan_for.cache_info()
    assert after.misses == before.misses
    assert after.hits > before.hits


def test_arrow_type_for_connect_schemas() -> None:
    dec = "org.apache.kafka.connect.data.Decimal"

    def decimal(p: int | None, s: int) -> dict:
        params = {"scale": str(s)} | ({"connect.decimal.precision": str(p)} if p else {})
        return {"type": "bytes", "name": dec, "parameters": params}

    assert arrow_type_for(decimal(10, 2)) == pa.decimal128(10, 2)
    assert arrow_type_for(decimal(38, 0)) == pa.decimal128(38, 0)
    # past DuckDB's 38 digits (it would read DOUBLE) or a negative scale: exact text
    assert arrow_type_for(decimal(39, 3)) == pa.string()
    assert arrow_type_for(decimal(76, 3)) == pa.string()
    assert arrow_type_for(decimal(500, 10)) == pa.string()
    assert arrow_type_for(decimal(5, -2)) == pa.string()
    assert arrow_type_for(decimal(None, 2)) == pa.decimal128(38, 2)  # MONEY
    assert arrow_type_for({"type": "int64", "name": "io.debezium.time.NanoTimestamp"}) == (
        pa.timestamp("ns")
    )
    assert arrow_type_for({"type": "int64", "name": "io.debezium.time.NanoTime"}) == pa.time64("ns")
    assert arrow_type_for({"type": "string", "name": "io.debezium.time.Interval"}) == (
        pa.month_day_nano_interval()
    )
    assert arrow_type_for(
        {"type": "map", "keys": {"type": "string"}, "values": {"type": "string", "optional": True}}
    ) == pa.map_(pa.string(), pa.string())
