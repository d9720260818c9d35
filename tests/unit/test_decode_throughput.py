"""Decode throughput on recorded real messages, replicated (offsets renumbered).

    DECODE_BENCH_EVENTS=200000 pytest -q -s tests/unit/test_decode_throughput.py

prints events/s for narrow rows (EVENTS of them) and for the wide type-zoo rows (EVENTS/10: 50
columns, multi-KB text/jsonb, ~15 KB of JSON each).
The floor asserted here is deliberately far below the target (>= 50k events/s for the whole
landing path) so a busy shared machine does not make it flaky; the printed numbers are the
measurement.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.decode import RawMessage, decode_batch
from pipelines.decode.replay import read_jsonl

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"
EVENTS = int(os.environ.get("DECODE_BENCH_EVENTS", "20000"))
BATCH = 50_000  # Settings.batch_max_records


def replicated(pool: list[RawMessage], n: int) -> list[RawMessage]:
    return [replace(pool[i % len(pool)], offset=i) for i in range(n)]


def rate(msgs: list[RawMessage]) -> tuple[float, float]:
    """(events/s of CPU time, events/s of wall time): CPU time is what a busy shared machine
    does not distort much; wall time is what a user sees."""
    cpu, wall = time.process_time(), time.perf_counter()
    rows = 0
    for i in range(0, len(msgs), BATCH):
        b = decode_batch(msgs[i : i + BATCH], ingested_at=datetime.now(UTC), topic_prefix="zoo")
        assert b.quarantine.num_rows == 0
        rows += sum(t.num_rows for t in b.tables.values())
    assert rows == len(msgs)
    return len(msgs) / (time.process_time() - cpu), len(msgs) / (time.perf_counter() - wall)


@pytest.mark.parametrize("kind", ["wide", "narrow"])
def test_decode_throughput(kind: str) -> None:
    changes = [m for m in read_jsonl(RECORDED) if m.value and m.topic.startswith("zoo.zoo.")]
    if kind == "wide":
        pool = [m for m in changes if m.topic == "zoo.zoo.typezoo"]
    else:
        pool = [m for m in changes if m.topic in ("zoo.zoo.keyless", "zoo.zoo.evolving")]
        pool = [m for m in pool if b'"op":"t"' not in m.value]
    n = EVENTS if kind == "narrow" else max(1, EVENTS // 10)  # wide rows are ~15 KB each
    msgs = replicated(pool, n)
    mb = sum(len(m.value) for m in msgs) / 1e6
    cpu, wall = rate(msgs)
    print(f"\ndecode {kind}: {n} events, {mb:.0f} MB JSON: {cpu:,.0f} events/s CPU, "
          f"{wall:,.0f} events/s wall")  # fmt: skip
    assert cpu > (500 if kind == "wide" else 5_000)
