"""Landing throughput on a real backlog, against the raw kafka-python fetch rate.

    CHANGELAKE_BENCH_EVENTS=200000 pytest tests/integration/test_landing_throughput.py -s

Inserts a backlog with a pgbench-like loop (multi-row INSERTs in many transactions), waits
until Debezium has put all of it in Kafka, then times (1) a bare consumer draining the topic
with the lander's fetch settings and (2) ``land``.  Prints wall and CPU rates: the machine is
shared, so events per CPU-second is the steadier number.
"""

from __future__ import annotations

import os
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from test_landing import (
    assert_exactly_once,
    insert_rows,
    lake_settings,
    table,  # noqa: F401 - the fixture
    wait_for_records,
)

from pipelines.bronze.lander import land
from pipelines.bronze.topics import topic_for

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("CHANGELAKE_BENCH_EVENTS", "50000"))


def raw_fetch(settings, topic: str) -> tuple[int, float, float]:
    """Drain ``topic`` with a bare consumer: (records, wall s, cpu s)."""
    fetch = max(settings.max_message_bytes, 1024 * 1024)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=fetch,
        fetch_max_bytes=max(fetch, 64 * 1024 * 1024),
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        n, t0, c0 = 0, time.monotonic(), time.process_time()
        while consumer.position(tp) < end:
            for recs in consumer.poll(
                timeout_ms=500, max_records=settings.batch_max_records
            ).values():
                n += len(recs)
        return n, time.monotonic() - t0, time.process_time() - c0
    finally:
        consumer.close()


def test_landing_rate_against_raw_fetch(stack, table, tmp_path) -> None:  # noqa: F811
    lake = tmp_path / "lake"
    settings = lake_settings(stack, lake, table)
    topic = topic_for(settings, table)
    insert_rows(stack, table, 0, EVENTS, per_tx=500)
    wait_for_records(settings, topic, EVENTS, timeout=max(120, EVENTS / 500))
    n_raw, raw_wall, raw_cpu = raw_fetch(settings, topic)
    c0 = time.process_time()
    result = land(settings, tables=[table])
    land_cpu = time.process_time() - c0
    assert result.events == EVENTS and result.quarantined == 0
    assert assert_exactly_once(settings, lake, table) == EVENTS
    land_rate, raw_rate = result.events / result.seconds, n_raw / raw_wall
    print(
        f"\nbacklog {EVENTS} events: raw fetch {raw_rate:,.0f}/s wall ({n_raw / raw_cpu:,.0f}/cpu-s);"
        f" land {land_rate:,.0f}/s wall ({result.events / land_cpu:,.0f}/cpu-s);"
        f" land/raw = {land_rate / raw_rate:.2f}; files {result.files}; stages {result.timings}"
    )
