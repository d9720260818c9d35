"""P2 freshness: commit-to-silver latency while pgbench inserts at a target rate (continuous mode).

Pipeline under test, all real: pgbench (``-R`` rate-limited) -> PostgreSQL -> Debezium -> Kafka ->
the lander in follow mode (``python -m pipelines.bronze --follow``, a separate process, fresh
lake) -> a compaction loop in this process (``pipelines.silver.compact`` back to back). For each
event: commit time ``_source_ts`` (PostgreSQL's clock, same machine), ``_ingested_at`` (lander),
and the time the silver snapshot containing it was published. Reported separately: commit->bronze,
bronze->silver, and end to end commit->silver, p50/p95/p99.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime

import duckdb

from bench import pgload
from bench.common import Result, Target, percentile
from bench.lakegen import data_dir
from bench.stack import ensure_stack, lander_process
from pipelines.bronze import files
from pipelines.naming import QualifiedName
from pipelines.silver import compact

TABLE = QualifiedName("bench", "fresh")  # its own small topic (see bench.stack)
RATE = 1000  # the brief's workload rate; BENCH_P2_RATE runs another (saved as P2@<rate>)


def _wait_caught_up(s, lake, timeout: float = 900) -> None:  # noqa: ANN001
    """Until Debezium has streamed the WAL written so far and the lander has landed the topic
    up to its end, so the measured load starts on an idle pipeline (no earlier backlog)."""
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.bronze import landed_offsets
    from pipelines.stack import topic_for
    from pipelines.stack.postgres import slot_lag_bytes

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (slot_lag_bytes(s) or 0) > 1_000_000:
        time.sleep(1)
    topic = topic_for(s, TABLE)
    c = KafkaConsumer(bootstrap_servers=s.bootstrap_servers)
    try:
        tp = TopicPartition(topic, 0)
        end = c.end_offsets([tp])[tp] if topic in c.topics() else 0
    finally:
        c.close()
    while time.monotonic() < deadline:
        if end == 0 or landed_offsets(lake).get((topic, 0), -1) >= end - 1:
            return
        time.sleep(1)
    raise TimeoutError(f"pipeline did not catch up with {topic} before the measured load")


def run(seconds: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    rate = int(os.environ.get("BENCH_P2_RATE", RATE))
    fig = "P2" if rate == RATE else f"P2@{rate}"
    r = Result(fig, f"freshness commit->silver at {rate} tx/s", command, smoke=smoke)
    s = ensure_stack(progress=None)
    lake = data_dir() / f"lake-p2-{int(time.time())}"
    lake.mkdir(parents=True, exist_ok=True)
    log = data_dir() / f"{lake.name}-lander.log"
    lander = lander_process(
        lake,
        "--follow",
        "--table",
        str(TABLE),
        "--max-seconds",
        str(seconds + 240),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    publishes: list[tuple[int, int, datetime]] = []  # (after_lsn, upto_lsn, published_at)
    try:
        # let the lander land whatever the topic already holds, then start the measured load
        pgload.prepare(s)
        _wait_caught_up(s, lake)
        compact(lake, TABLE, catalog=False)
        start = datetime.now(UTC)
        proc = pgload.start(s, seconds, rate=rate, clients=4, table=TABLE)
        pg = None
        drain_until = None
        while True:
            res = compact(lake, TABLE, catalog=False)
            if res.changed:
                prev = publishes[-1][1] if publishes else -1
                publishes.append((prev, res.watermark_lsn, datetime.now(UTC)))
            if pg is None and proc.poll() is not None:
                pg = pgload.finish(proc)
                drain_until = time.monotonic() + 60
            if drain_until is not None and (
                _all_in_silver(lake, start, pg["transactions"]) or time.monotonic() > drain_until
            ):
                break
            time.sleep(0.2)
    finally:
        lander.terminate()
        try:
            lander.wait(30)
        except subprocess.TimeoutExpired:
            lander.kill()
    lat = _latencies(lake, start, publishes)
    if not lat["e2e"]:
        r.notes.append(f"no events measured; lander log {log}: " + log.read_text()[-1500:])
    shutil.rmtree(lake, ignore_errors=True)
    e2e, c2b, b2s = lat["e2e"], lat["c2b"], lat["b2s"]
    r.params = {
        "seconds": seconds,
        "target_rate_tx_s": rate,
        "pgbench_clients": 4,
        "rows_per_tx": 1,
    }
    r.metrics = {
        "achieved_tx_s": round(pg["tps"]) if pg else None,
        "events_measured": len(e2e),
        "compactions_published": len(publishes),
        **{f"commit_to_silver_p{q}_s": _r(percentile(e2e, q)) for q in (50, 95, 99)},
        **{f"commit_to_bronze_p{q}_s": _r(percentile(c2b, q)) for q in (50, 95, 99)},
        **{f"bronze_to_silver_p{q}_s": _r(percentile(b2s, q)) for q in (50, 95, 99)},
        "events_not_in_silver": lat["missing"],
    }
    r.targets = [
        Target("commit->silver p95", _r(percentile(e2e, 95)), "<=", 5, "s"),
        Target("achieved rate", round(pg["tps"]) if pg else None, ">=", rate, "tx/s"),
    ]
    if rate != RATE:
        r.command = f"BENCH_P2_RATE={rate} {command}"
    r.notes.append(
        "continuous mode: lander --follow (own process) + back-to-back incremental "
        "compaction; commit times from PostgreSQL, publish times from this process"
    )
    return [r]


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _all_in_silver(lake, start: datetime, n: int) -> bool:  # noqa: ANN001
    cur = lake / "silver" / TABLE.path / "current" / "part-0.parquet"
    if not cur.exists():
        return False
    con = duckdb.connect()
    try:
        got = con.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE _source_ts >= ?", [str(cur), start]
        ).fetchone()[0]
    finally:
        con.close()
    return got >= n


def _latencies(lake, start: datetime, publishes) -> dict:  # noqa: ANN001
    """Per event: the first publish whose watermark covers its commit LSN."""
    paths = [str(p) for p in files(lake, TABLE)]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE pub (lo BIGINT, hi BIGINT, pub_at TIMESTAMPTZ)")
        con.executemany("INSERT INTO pub VALUES (?, ?, ?)", publishes)
        rows = con.execute(
            """SELECT epoch(e._ingested_at) - epoch(e._source_ts),
                      epoch(p.pub_at) - epoch(e._ingested_at),
                      epoch(p.pub_at) - epoch(e._source_ts)
               FROM read_parquet(?, union_by_name = true) e
               LEFT JOIN pub p ON coalesce(e._commit_lsn, e._lsn) > p.lo
                              AND coalesce(e._commit_lsn, e._lsn) <= p.hi
               WHERE e._source_ts >= ? AND e._op = 'c'""",
            [paths, start],
        ).fetchall()
    finally:
        con.close()
    done = [x for x in rows if x[2] is not None]
    return {
        "c2b": [x[0] for x in done],
        "b2s": [x[1] for x in done],
        "e2e": [x[2] for x in done],
        "missing": len(rows) - len(done),
    }
