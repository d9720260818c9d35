"""Reference: Debezium's own rate into Kafka on this machine under a pgbench insert load.

pgbench (2 clients, unthrottled) inserts into the captured ``bench.events`` for N seconds while
the table topic's end offset is sampled every second; Debezium's rate is the offset growth over
the load window, and the drain time is how long the topic keeps growing after pgbench stops.
This is the source the pipeline's figures should be read against.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from bench import pgload
from bench.common import Result, Target
from bench.stack import ensure_stack
from pipelines.naming import QualifiedName
from pipelines.stack import topic_for


def _end(c: KafkaConsumer, tp: TopicPartition) -> int:
    """End offset of the topic; 0 while Debezium has not created it (first event pending)."""
    if tp.topic not in c.topics():
        c._client.cluster.request_update()  # topics() may answer from a stale cache
        if tp.topic not in c.topics():
            return 0
    return c.end_offsets([tp])[tp]


BATCH_ROWS = 100


def run(seconds: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    """Two phases: 1 row per transaction (PostgreSQL's commit rate bounds it), then
    BATCH_ROWS rows per transaction (closer to Debezium's own ceiling)."""
    return [
        _phase("REF", 1, seconds, smoke, command),
        _phase("REF-B", BATCH_ROWS, max(seconds // 3, 2), smoke, command),
    ]


def _phase(fig: str, rows: int, seconds: int, smoke: bool, command: str) -> Result:
    r = Result(fig, f"Debezium rate into Kafka (pgbench, {rows} row/tx)", command, smoke=smoke)
    s = ensure_stack(progress=None)
    topic = topic_for(s, QualifiedName("bench", "events"))
    c = KafkaConsumer(bootstrap_servers=s.bootstrap_servers)
    tp = TopicPartition(topic, 0)
    try:
        start_off = _end(c, tp)
        proc = pgload.start(s, seconds, rows_per_tx=rows)
        t0 = time.perf_counter()
        curve = []
        while proc.poll() is None:
            curve.append((time.perf_counter() - t0, _end(c, tp) - start_off))
            time.sleep(1)
        pg = pgload.finish(proc)
        t_load = time.perf_counter() - t0
        # drain: until every inserted row is in the topic (or 300 s)
        deadline = time.perf_counter() + 300
        while (
            _end(c, tp) - start_off < pg["transactions"] * rows and time.perf_counter() < deadline
        ):
            time.sleep(0.5)
        t_drained = time.perf_counter() - t0
        total = _end(c, tp) - start_off
    finally:
        c.close()
    window = [(t, n) for t, n in curve if t >= 2]  # skip the first seconds of ramp-up
    steady = (
        (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(window) > 1 else None
    )
    r.params = {"seconds": seconds, "clients": 2, "rows_per_tx": rows}
    r.metrics = {
        "pgbench_tps": round(pg["tps"]),
        "pgbench_transactions": pg["transactions"],
        "rows_inserted": pg["transactions"] * rows,
        "debezium_events_per_s_during_load": round(steady) if steady else None,
        "debezium_events_per_s_overall": round(total / t_drained),
        "events_in_topic": total,
        "drain_after_load_s": round(t_drained - t_load, 1),
        "curve": [[round(t, 1), n] for t, n in curve],
    }
    r.targets = [
        Target(
            "Debezium events/s into Kafka (load + drain)",
            round(total / t_drained),
            "info",
            0,
            "events/s",
        ),
        Target(
            "inserts that reached the topic",
            round(total / max(pg["transactions"] * rows, 1), 4),
            ">=",
            1.0,
            "share",
        ),
    ]
    r.notes.append(
        "no rate target in the brief: this is the source the pipeline reads; the check "
        "is only that every committed insert reached Kafka (drain time shows the lag)"
    )
    if total < pg["transactions"] * rows:
        r.notes.append(
            f"only {total} of {pg['transactions'] * rows} rows reached the topic in time"
        )
    return r
