"""Poison input in a CDC topic (issue 8, item 4): each bad message ends in quarantine or is
handled as documented, the count is visible, and nothing else is lost.

The bad messages are produced with kafka-python into the real Debezium topic of a captured
table, between real change events. Mutated messages start from a message the real connector
wrote in this run (never a hand-written guess of the format). Documented handling:
* malformed JSON, a wrong envelope, an unknown op, a value contradicting its schema
  -> quarantine (raw bytes kept, reason given); ``LandingResult.quarantined`` counts them and
  the Dagster ``quarantine_empty`` check fails with the file count;
* an unknown semantic type -> the plain Connect type, with a warning (decode's contract);
* a flood of tombstones -> counted (``LandingResult.tombstones``), never landed as rows, their
  offsets still accounted for (batch markers), silver unaffected;
* a record over the topic's ``max.message.bytes`` -> refused by the broker
  (MessageSizeTooLarge at the producer), so it never enters the topic; a real row well over
  Kafka's default 1 MB but under the limit goes through Debezium and lands intact;
* an event claiming a source table named ``../../escape`` -> lands under an encoded directory
  inside the lake, nowhere else.
It runs on both lake formats: the Parquet lake's quarantine files and Iceberg's
``quarantine.<topic>`` table (one table per format, so the two share no topic).
"""

from __future__ import annotations

import time

import orjson
import pytest
from faultkit import (
    bronze_rows,
    exactly_once,
    files_outside,
    lake_settings,
    quarantine_rows,
    read_topics,
    record_figures,
    silver_vs_pg,
    wait_streamed,
)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from pipelines.bronze.topics import topic_for
from pipelines.lakeformat import compact_table
from pipelines.landing import land
from pipelines.naming import QualifiedName

pytestmark = [pytest.mark.integration, pytest.mark.faults]

POISONS = {
    "parquet": QualifiedName("faults", "poison"),
    "iceberg": QualifiedName("faults", "poison_ice"),
}
TOMBSTONES = 3000
BIG_ROW_BYTES = 3 * 1024 * 1024


def real_message(settings, topic: str) -> tuple[bytes, bytes]:  # noqa: ANN001
    """The first create event Debezium wrote to ``topic`` (key, value)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        for _ in range(30):
            for recs in consumer.poll(timeout_ms=1000).values():
                for r in recs:
                    if r.value and orjson.loads(r.value)["payload"]["op"] == "c":
                        return r.key, r.value
        raise AssertionError(f"no create event in {topic}")
    finally:
        consumer.close()


def mutated(value: bytes, fn) -> bytes:  # noqa: ANN001
    doc = orjson.loads(value)
    fn(doc)
    return orjson.dumps(doc)


def _set_op(doc: dict) -> None:
    doc["payload"]["op"] = "x"


def _bad_value(doc: dict) -> None:
    doc["payload"]["after"]["v"] = "not a number"


def _unknown_semantic(doc: dict) -> None:
    for side in doc["schema"]["fields"]:
        if side["field"] in ("before", "after"):
            for f in side["fields"]:
                if f["field"] == "v":
                    f["name"] = "io.example.UnknownSemanticType"


def _escape_table(doc: dict) -> None:
    doc["payload"]["source"]["table"] = "../../escape"


@pytest.mark.parametrize("lake_format", sorted(POISONS))
def test_poison_messages_are_quarantined_and_nothing_else_is_lost(
    stack, tmp_path, lake_format
) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    poison = POISONS[lake_format]
    t = poison.sql
    stack.capture(
        f"CREATE SCHEMA IF NOT EXISTS faults; DROP TABLE IF EXISTS {t};"
        f"CREATE TABLE {t} (id int PRIMARY KEY, v int, big text);",
        str(poison),
    )
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, [poison], lake_format=lake_format)
    topic = topic_for(settings, poison)
    with stack.pg() as conn:
        conn.execute(f"INSERT INTO {t} (id, v) SELECT g, g FROM generate_series(1, 50) g")  # noqa: S608
        conn.execute(f"DELETE FROM {t} WHERE id <= 5")  # real delete + tombstone  # noqa: S608
        wait_streamed(conn, settings.slot_name)
    key, value = real_message(settings, topic)

    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        max_request_size=settings.max_message_bytes * 2,
        acks="all",
        retries=0,
    )
    quarantine_expected = {
        "malformed JSON": value[: len(value) // 2],
        "wrong envelope": b'{"hello": "world", "payload": null}',
        "unknown op": mutated(value, _set_op),
        "value contradicts schema": mutated(value, _bad_value),
    }
    try:
        for v in quarantine_expected.values():
            producer.send(topic, key=key, value=v)
        producer.send(topic, key=key, value=mutated(value, _unknown_semantic))
        producer.send(topic, key=key, value=mutated(value, _escape_table))
        for _ in range(TOMBSTONES):
            producer.send(topic, key=key, value=None)
        producer.flush(timeout=60)
        before = read_topics(settings, [topic])[(topic, 0)].offsets[-1]
        oversize = b"x" * (settings.max_message_bytes + 1024 * 1024)
        with pytest.raises(KafkaError) as refused:
            producer.send(topic, key=key, value=oversize).get(timeout=60)
        after = read_topics(settings, [topic])[(topic, 0)].offsets[-1]
        assert after == before, "an oversize record entered the topic"
    finally:
        producer.close()

    with stack.pg() as conn:  # the stream goes on after the poison
        conn.execute(f"INSERT INTO {t} (id, v) SELECT g, g FROM generate_series(51, 80) g")  # noqa: S608
        conn.execute(f"UPDATE {t} SET v = -v WHERE id % 7 = 0")  # noqa: S608
        conn.execute(
            f"INSERT INTO {t} (id, v, big) VALUES (1000, 1, repeat(md5('x'), %s))",  # noqa: S608
            (BIG_ROW_BYTES // 32,),
        )
        wait_streamed(conn, settings.slot_name)

    result = land(settings)
    assert result.quarantined == len(quarantine_expected), result
    assert result.tombstones == TOMBSTONES + 5  # ours + the 5 real deletes
    assert any("io.example.UnknownSemanticType" in w for w in result.warnings), result.warnings

    held = quarantine_rows(settings, topic, ["value", "error"])
    reasons, raw = held.column("error").to_pylist(), held.column("value").to_pylist()
    assert sorted(raw) == sorted(quarantine_expected.values()), "quarantine must keep raw bytes"
    assert any("JSON" in r for r in reasons) and any("op" in r for r in reasons), reasons

    once = exactly_once(settings, [topic])
    assert not once.duplicated and not once.missing and not once.invented
    assert not once.tombstones_landed

    escape = QualifiedName("faults", "../../escape")
    assert bronze_rows(settings, escape, ["_offset"]).num_rows == 1  # its own table, in the lake
    assert not files_outside(tmp_path, lake)

    compact_table(settings, str(poison))
    with stack.pg() as conn:
        diff = silver_vs_pg(conn, settings, poison, ["id"])
    assert not diff.only_pg and not diff.only_silver and diff.silver_dup_keys == 0, diff

    check = dagster_quarantine_check(settings, poison)
    assert check.passed is False and check.metadata["quarantined"].value >= 1

    record_figures(
        "poison" if lake_format == "parquet" else f"poison_{lake_format}",
        {
            "quarantined": result.quarantined,
            "quarantine_reasons": reasons,
            "tombstones_counted": result.tombstones,
            "tombstones_produced": TOMBSTONES,
            "events_landed": result.events,
            "unknown_semantic_type": "landed as plain type with a warning",
            "oversize_record": f"refused by the broker: {type(refused.value).__name__}",
            "big_row_bytes_landed": BIG_ROW_BYTES,
            "dagster_quarantine_check_passed": check.passed,
            "rows_lost": len(diff.only_pg) + len(once.missing),
            "seconds": round(time.monotonic() - t0, 1),
        },
    )


def dagster_quarantine_check(settings, poison: QualifiedName):  # noqa: ANN001, ANN201
    """Run the code location's ``quarantine_empty`` check for the poison table."""
    from pipelines.defs.checks import build_checks
    from pipelines.defs.resources import ChangelakeResource

    checks = build_checks([poison])
    spec = next(c for c in checks if any(s.name == "quarantine_empty" for s in c.check_specs))
    return spec(changelake=ChangelakeResource.from_settings(settings))
