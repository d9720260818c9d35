"""Claim-checked domain events (issue 16, deliverable 4): the lander infers the payload schema
by the Outbox Event Router's rules -- checked against every event the REAL connector recorded
(tests/fixtures/debezium/outbox.jsonl) -- and lands a claim-checked event exactly as the
same event inline; a claim that does not resolve is quarantined with its raw bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from pipelines import claimcheck
from pipelines.claimcheck import CLAIMS, ClaimError, inline_limit
from pipelines.decode import RawMessage, decode_batch
from pipelines.decode.claims import infer_schema
from pipelines.decode.events import event_table
from pipelines.decode.replay import read_jsonl

pytestmark = pytest.mark.unit
RECORDING = Path(__file__).parent.parent / "fixtures" / "debezium" / "outbox.jsonl"
PREFIX = "ob"
NOW = datetime(2026, 12, 3, tzinfo=UTC)
TABLE = event_table("order")


@pytest.fixture(scope="module")
def recorded() -> list[RawMessage]:
    return read_jsonl(RECORDING)


def _payload_field(value: dict) -> dict:
    (field,) = [f for f in value["schema"]["fields"] if f["field"] == "payload"]
    return field


def test_inference_reproduces_the_routers_schema_of_every_recorded_event(recorded) -> None:
    versions = set()
    for msg in recorded:
        value = orjson.loads(msg.value)
        field = _payload_field(value)
        expected = {k: v for k, v in field.items() if k != "field"}
        assert infer_schema(field["name"], value["payload"]["payload"]) == expected, msg.offset
        versions.add(value["payload"]["schema_version"])
    assert versions == {1, 2}


def _claimed(msg: RawMessage, lake: Path, offset: int) -> RawMessage:
    """``msg`` as the producer would have sent it claim-checked: the payload stored in the
    lake, the reference in its place, typed by the router's rules like any inline payload."""
    value = orjson.loads(msg.value)
    env = value["payload"]
    stored = orjson.dumps(env["payload"])
    env["payload"] = claimcheck.store(lake, env["aggregate_type"], env["event_id"], stored)
    field = _payload_field(value)
    field.clear()
    field.update({**infer_schema("payload", env["payload"]), "field": "payload"})
    return RawMessage(
        msg.topic, msg.partition, offset, msg.timestamp_ms, msg.key, orjson.dumps(value)
    )


def test_a_claim_checked_event_lands_exactly_as_the_inline_event(recorded, tmp_path) -> None:
    inline = decode_batch(recorded, ingested_at=NOW, topic_prefix=PREFIX).tables[TABLE]
    claimed_msgs = [_claimed(m, tmp_path, m.offset) for m in recorded]
    assert all(
        list(orjson.loads(m.value)["payload"]["payload"]) == ["claim_check"] for m in claimed_msgs
    )
    batch = decode_batch(claimed_msgs, ingested_at=NOW, topic_prefix=PREFIX, lake=tmp_path)
    assert batch.quarantine.num_rows == 0
    claimed = batch.tables[TABLE]
    assert claimed.schema == inline.schema
    assert claimed.drop_columns(["_ingested_at"]).equals(inline.drop_columns(["_ingested_at"]))


def test_a_claim_that_does_not_resolve_is_quarantined_with_its_bytes(recorded, tmp_path) -> None:
    msgs = [_claimed(m, tmp_path, i) for i, m in enumerate(recorded[:4])]
    ids = [orjson.loads(m.value)["payload"]["event_id"] for m in msgs]
    claims = tmp_path / CLAIMS / "order"
    (claims / f"{ids[0]}.json").unlink()  # missing
    altered = claims / f"{ids[1]}.json"
    altered.write_bytes(altered.read_bytes().replace(b'"EUR"', b'"USD"'))  # same size, other bytes
    value = orjson.loads(msgs[2].value)  # a reference to another event's claim
    value["payload"]["payload"]["claim_check"]["key"] = f"order/{ids[3]}.json"
    msgs[2] = RawMessage(
        msgs[2].topic, 0, 2, msgs[2].timestamp_ms, msgs[2].key, orjson.dumps(value)
    )
    batch = decode_batch(msgs, ingested_at=NOW, topic_prefix=PREFIX, lake=tmp_path)
    q = batch.quarantine.to_pylist()
    assert [r["offset"] for r in q] == [0, 1, 2]
    assert [r["value"] for r in q] == [m.value for m in msgs[:3]]
    assert "is missing" in q[0]["error"] and "sha256" in q[1]["error"]
    assert "is not this event's" in q[2]["error"]
    assert batch.tables[TABLE].num_rows == 1  # the good one lands
    no_lake = decode_batch(msgs[3:], ingested_at=NOW, topic_prefix=PREFIX)
    assert "no lake" in no_lake.quarantine.to_pylist()[0]["error"]


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        (2**31 - 1, {"type": "int32", "optional": True}),
        (2**31, {"type": "int64", "optional": True}),
        (-(2**63), {"type": "int64", "optional": True}),
        (2**63, {"type": "double", "optional": True}),  # beyond long: Jackson's BigInteger
        (1.5, {"type": "double", "optional": True}),
        (True, {"type": "boolean", "optional": True}),  # a bool is not a number
        ("x", {"type": "string", "optional": True}),
        (None, None),
        ([], None),
        (
            [None, "a"],
            {"type": "array", "items": {"type": "string", "optional": True}, "optional": True},
        ),
    ],
)
def test_router_rules_for_single_values(value, schema) -> None:
    assert infer_schema("k", value) == schema


def test_object_arrays_merge_fields_and_nulls_are_left_out() -> None:
    doc = {"a": None, "e": [], "xs": [{"p": 1}, {"p": 2, "q": "s"}, {"q": "t"}]}
    assert infer_schema("payload", doc) == {
        "type": "struct",
        "name": "payload",
        "optional": True,
        "fields": [
            {
                "type": "array",
                "optional": True,
                "field": "xs",
                "items": {
                    "type": "struct",
                    "name": "payload.xs",
                    "optional": True,
                    "fields": [
                        {"type": "int32", "optional": True, "field": "p"},
                        {"type": "string", "optional": True, "field": "q"},
                    ],
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("value", "why"),
    [([1, "a"], "homogenous"), ([1, 2**40], "number types"), ([None], "only nulls")],
)
def test_arrays_the_router_cannot_type_are_refused(value, why) -> None:
    with pytest.raises(ClaimError, match=why):
        infer_schema("k", value)


def test_inline_limit_leaves_room_for_the_envelope() -> None:
    assert inline_limit(16 * 1024 * 1024) == 16 * 1024 * 1024 - claimcheck.CLAIM_HEADROOM
    assert inline_limit(100_000) == 50_000
