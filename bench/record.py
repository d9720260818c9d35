"""Record REAL Debezium messages of ``bench.events`` to be the templates of synthetic events.

    python -m bench.record

Runs against the benchmarks' private stack (``bench.stack``): commits a few known transactions
(inserts, updates, a delete) into ``bench.events``, then consumes the table topic and the
transaction topic and writes ``bench/templates/bench_events.jsonl`` -- one line per Kafka
message, key and value as the exact UTF-8 text Kafka holds. ``bench.synth`` only ever varies
values inside these real messages, so synthetic events have exactly the connector's shape.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

TEMPLATES = Path(__file__).resolve().parent / "templates" / "bench_events.jsonl"

CHANGES = [
    "INSERT INTO bench.events (id, customer_id, status, amount, quantity, note, is_paid, updated_at) "
    "VALUES (-1, 7, 'new', 12.50, 3, 'first', false, now()), "
    "(-2, 8, 'new', 99.99, 1, NULL, true, now()), (-3, 9, 'new', 0.01, 10, 'x', false, NULL)",
    "UPDATE bench.events SET status = 'paid', is_paid = true, updated_at = now() WHERE id IN (-1, -3)",
    "DELETE FROM bench.events WHERE id = -2",
]


def record(settings, timeout: float = 60) -> list[dict]:  # noqa: ANN001
    """Commit CHANGES (one transaction each) and return the resulting messages of both topics."""
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.naming import QualifiedName
    from pipelines.stack import topic_for, transaction_topic
    from pipelines.stack.postgres import app_connect

    with app_connect(settings) as conn:
        conn.autocommit = True
        conn.execute("DELETE FROM bench.events WHERE id < 0")
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    topics = [topic_for(settings, QualifiedName.parse("bench.events")), transaction_topic(settings)]
    deadline = time.monotonic() + timeout
    existing = consumer.topics()
    tps = [TopicPartition(t, 0) for t in topics]
    ends = consumer.end_offsets([tp for tp in tps if tp.topic in existing]) if existing else {}
    with app_connect(settings) as conn:
        conn.autocommit = True
        for stmt in CHANGES:
            conn.execute(stmt)
    while not all(consumer.partitions_for_topic(t) for t in topics):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {topics} did not appear")
        consumer._client.cluster.request_update()
        time.sleep(0.5)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, ends.get(tp, 0))
    out: list = []
    while time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=1000).values():
            out.extend(recs)
        ops = [r for r in out if r.topic == topics[0] and r.value]
        ends_seen = [r for r in out if r.topic == topics[1] and b'"END"' in (r.value or b"")]
        if len(ops) >= 6 and len(ends_seen) >= 3:
            break
    consumer.close()
    return [
        {
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "key": r.key.decode() if r.key is not None else None,
            "value": r.value.decode() if r.value is not None else None,
        }
        for r in sorted(out, key=lambda r: (r.topic, r.offset))
    ]


def main() -> None:
    from bench.stack import ensure_stack

    s = ensure_stack()
    rows = record(s)
    TEMPLATES.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATES.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    print(f"recorded {len(rows)} messages to {TEMPLATES}")


if __name__ == "__main__":
    main()
