"""Shared helpers of the Iceberg commit tests: a lake in a temp home and Kafka-like batches.

Also runnable as a child committer process (``python tests/iceberg_lake.py '<json>'``), which
the crash and concurrency tests start and kill: it commits the given ranges of one partition
and, when told, dies with ``os._exit`` on entering a commit state (a real process death: no
finally blocks, no flushes, exactly what SIGKILL leaves behind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from pipelines.config import Settings
from pipelines.iceberg.catalog import ensure_table, open_catalog
from pipelines.iceberg.commit import Batch, CommitState, commit_batch
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.offsets import OffsetRange, TopicPartition
from pipelines.naming import QualifiedName

TOPIC = "changelake.shop.orders"
TABLE = QualifiedName("shop", "orders")
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("payload", pa.string()),
        ("_topic", pa.string()),
        ("_kafka_partition", pa.int32()),
        ("_offset", pa.int64()),
    ]
)
CRASH_EXIT = 77


def settings_for(home: Path) -> Settings:
    return Settings(_env_file=None, home=home)


def make_batch(partition: int, start: int, end: int, *, skip_every: int = 0) -> Batch:
    """Rows for offsets [start, end) of one partition (``skip_every``: compacted-away gaps)."""
    offs = [o for o in range(start, end) if not (skip_every and o % skip_every == 0)]
    rows = pa.table(
        {
            "id": [partition * 1_000_000 + o for o in offs],
            "payload": [f"p{partition}o{o}" for o in offs],
            "_topic": [TOPIC] * len(offs),
            "_kafka_partition": pa.array([partition] * len(offs), pa.int32()),
            "_offset": pa.array(offs, pa.int64()),
        },
        schema=SCHEMA,
    )
    return Batch(rows, {TopicPartition(TOPIC, partition): OffsetRange(start, end)})


def run_child(
    home: Path,
    partition: int,
    ranges: list[list[int]],
    crash_at: str | None = None,
    crash_batch: int = -1,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    spec = {"home": str(home), "partition": partition, "ranges": ranges,
            "crash_at": crash_at, "crash_batch": crash_batch}  # fmt: skip
    return subprocess.run([sys.executable, __file__, json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def start_child(home: Path, partition: int, ranges: list[list[int]]) -> subprocess.Popen[str]:
    spec = {"home": str(home), "partition": partition, "ranges": ranges,
            "crash_at": None, "crash_batch": -1}  # fmt: skip
    return subprocess.Popen([sys.executable, __file__, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _child(spec: dict) -> None:
    table = ensure_table(open_catalog(settings_for(Path(spec["home"]))), BRONZE, TABLE, SCHEMA)
    for i, (start, end) in enumerate(spec["ranges"]):

        def hook(state: CommitState, i: int = i) -> None:
            if i == spec["crash_batch"] and state.value == spec["crash_at"]:
                os._exit(CRASH_EXIT)

        result = commit_batch(table, make_batch(spec["partition"], start, end), on_state=hook)
        print(json.dumps({"state": result.state.value, "rows": result.rows,
                          "attempts": result.attempts}), flush=True)  # fmt: skip


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
