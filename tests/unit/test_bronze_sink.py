"""The lander's sinks: the decode process lands exactly what the inline path lands, in order.

Recorded real Debezium messages are handed over as polls of ``ConsumerRecord``s (the type
kafka-python yields), so the worker process is exercised without Kafka.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from pipelines.bronze import bronze_tables, landed_offsets, scan
from pipelines.bronze.lander import LandingResult
from pipelines.bronze.sink import InlineSink, ProcessSink
from pipelines.bronze.worker import WorkerDied
from pipelines.decode.replay import read_jsonl

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"


def polls(size: int = 7) -> list[tuple[dict, dict]]:
    """The recording cut into polls of ``size`` records, positions after each poll."""
    msgs = list(read_jsonl(RECORDED))
    out, pos = [], {}
    for i in range(0, len(msgs), size):
        polled: dict[TopicPartition, list] = {}
        for m in msgs[i : i + size]:
            tp = TopicPartition(m.topic, m.partition)
            rec = ConsumerRecord(
                m.topic, m.partition, -1, m.offset, m.timestamp_ms, 0, m.key, m.value,
                [], None, -1, -1, -1,
            )  # fmt: skip
            polled.setdefault(tp, []).append(rec)
            pos[tp] = m.offset + 1
        out.append((polled, dict(pos)))
    return out


def land_all(sink, items: list[tuple[dict, dict]]) -> list[dict]:  # noqa: ANN001
    done = []
    try:
        for polled, positions in items:
            done += sink.put(polled, positions)
        done += sink.drain()
    finally:
        sink.close()
    return [p for p, _ in done]


def contents(lake: Path) -> dict[str, list]:
    """Every bronze row but its ingestion time (which differs between two runs)."""
    out = {}
    with duckdb.connect() as con:
        for t in bronze_tables(lake):
            rel = scan(con, lake, t)
            keep = [f'"{c}"' for c in rel.columns if c != "_ingested_at"]
            out[str(t)] = sorted(map(repr, rel.select(", ".join(keep)).fetchall()))
    return out


def test_process_sink_lands_what_inline_lands(tmp_path: Path) -> None:
    items = polls()
    inline, proc = LandingResult(), LandingResult()
    done_inline = land_all(InlineSink(tmp_path / "a", "zoo", inline), items)
    done_proc = land_all(ProcessSink(tmp_path / "b", "zoo", proc, max_polls=2), items)
    # every poll reported landed, oldest first, with the positions it was handed in with
    assert done_proc == done_inline == [p for _, p in items]
    assert landed_offsets(tmp_path / "b") == landed_offsets(tmp_path / "a")
    for field in ("events", "messages", "files", "quarantined", "tombstones", "per_table"):
        assert getattr(proc, field) == getattr(inline, field), field
    assert proc.offsets == inline.offsets
    assert sorted(proc.warnings) == sorted(inline.warnings)
    assert proc.warnings  # the recording changes a column's type: reported from the worker
    assert contents(tmp_path / "b") == contents(tmp_path / "a")


def test_a_failing_batch_stops_the_lander_with_the_reason(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.write_text("not a directory")  # every write fails
    sink = ProcessSink(lake, "zoo", LandingResult())
    with pytest.raises(WorkerDied, match="decode process failed"):
        land_all(sink, polls())


WORKER_OF_A_KILLED_LANDER = """
import os, sys, time
from pipelines.bronze.worker import DecodeProcess
p = DecodeProcess(sys.argv[1], "zoo")
p.start()
time.sleep(3)  # spawned and importing
print(p._proc.pid, flush=True)
os.kill(os.getpid(), 9)
"""


def test_the_worker_dies_with_the_lander(tmp_path: Path) -> None:
    """An orphaned worker must never write next to a restarted lander."""
    out = subprocess.run(
        [sys.executable, "-c", WORKER_OF_A_KILLED_LANDER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"decode worker {pid} outlived its lander")
