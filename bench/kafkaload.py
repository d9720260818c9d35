"""Put synthetic (real-shaped) events into real Kafka topics, and read them back raw.

Used by P1/P6: ``produce`` writes a backlog with kafka-python into a fresh topic pair
(``<prefix>.bench.events`` and ``<prefix>.transaction``, the names Debezium would use for that
prefix); ``raw_fetch`` is the baseline -- the same consumer settings as the lander, fetching every
record of the same topics and discarding it.
"""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from bench.synth import Generator
from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack import topic_for, transaction_topic

TABLE = QualifiedName("bench", "events")


def topics(settings: Settings) -> list[str]:
    return [topic_for(settings, TABLE), transaction_topic(settings)]


def create_topics(settings: Settings) -> list[str]:
    names = topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        cfg = {"max.message.bytes": str(settings.max_message_bytes)}
        new = [NewTopic(t, 1, 1, topic_configs=cfg) for t in names if t not in existing]
        if new:
            admin.create_topics(new)
    finally:
        admin.close()
    return names


def delete_topics(settings: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.delete_topics(topics(settings))
    except Exception:  # noqa: BLE001 - cleanup is best effort
        pass
    finally:
        admin.close()


def produce(settings: Settings, gen: Generator, events: int, chunk: int = 20_000) -> dict[str, int]:
    """Produce ``events`` events (plus tombstones and BEGIN/END) into the fresh topic pair."""
    table_topic, tx_topic = create_topics(settings)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks=1,
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=settings.max_message_bytes,
    )
    counts = {table_topic: 0, tx_topic: 0}
    try:
        for c in gen.chunks(events, chunk):
            for topic, msgs in ((table_topic, c.table), (tx_topic, c.tx)):
                for m in msgs:
                    producer.send(topic, key=m.key, value=m.value, timestamp_ms=m.timestamp_ms)
                counts[topic] += len(msgs)
        producer.flush()
    finally:
        producer.close()
    return counts


def consumer(settings: Settings) -> KafkaConsumer:
    """A consumer configured like the lander's (see pipelines.bronze.lander._consumer)."""
    fetch = max(settings.max_message_bytes, 1024 * 1024)
    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=fetch,
        fetch_max_bytes=max(fetch, 64 * 1024 * 1024),
        request_timeout_ms=60_000,
    )


def raw_fetch(
    settings: Settings, max_records: int, max_seconds: float | None = None
) -> tuple[int, int, float]:
    """Fetch every record of the topic pair and discard it: (records, bytes, seconds)."""
    c = consumer(settings)
    try:
        tps = [TopicPartition(t, 0) for t in topics(settings)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        end = c.end_offsets(tps)
        n = size = 0
        t0 = time.perf_counter()
        while any(c.position(tp) < end[tp] for tp in tps):
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                break
            for recs in c.poll(timeout_ms=500, max_records=max_records).values():
                n += len(recs)
                size += sum(len(r.value or b"") + len(r.key or b"") for r in recs)
        return n, size, time.perf_counter() - t0
    finally:
        c.close()
