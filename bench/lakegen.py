"""Synthetic bronze (and silver history) for P3-P5, through the real decoder and bronze writer.

Bronze is never hand-built: synthetic Kafka messages (``bench.synth``) go through
``decode_batch`` and ``pipelines.bronze.writer.write_batch`` exactly as the lander does it, one
batch per topic-partition chunk. A base lake is cached per size under ``BENCH_DATA`` (default
/tmp/bench-data) since building it is setup, not the thing measured; work copies are hard-linked
(bronze files and snapshots are immutable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.synth import Chunk, Generator
from pipelines.bronze.layout import BatchId
from pipelines.bronze.store import ParquetStore, Store
from pipelines.decode import decode_batch
from pipelines.naming import QualifiedName

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipelines.bronze.writer import WrittenBatch
    from pipelines.config import Settings

TABLE = QualifiedName("bench", "events")


def data_dir() -> Path:
    """Where generated lakes live (``BENCH_DATA``, default /tmp/bench-data)."""
    return Path(os.environ.get("BENCH_DATA", "/tmp/bench-data"))


def land_chunk(
    lake: Path,
    chunk: Chunk,
    topic_prefix: str = "bench",
    store: Store | None = None,
    on_batch: Callable[[WrittenBatch], None] | None = None,
) -> int:
    """Decode and write one chunk like the lander: one batch per topic, into ``store`` (default:
    the Parquet lake at ``lake``), each written batch passed to ``on_batch`` as the lander
    passes it; returns events landed."""
    now = datetime.now(UTC)
    landed = 0
    for msgs in (chunk.table, chunk.tx):
        if not msgs:
            continue
        d = decode_batch(msgs, ingested_at=now, topic_prefix=topic_prefix)
        if d.quarantine.num_rows:
            raise RuntimeError(
                f"synthetic events quarantined: {d.quarantine.slice(0, 1).to_pylist()}"
            )
        batch = BatchId(msgs[0].topic, msgs[0].partition, msgs[0].offset, msgs[-1].offset)
        w = (store or ParquetStore(lake)).write(batch, d, now)
        landed += sum(w.rows.values())
        if on_batch is not None:
            on_batch(w)
    return landed


def generator_version() -> str:
    """Changes when the generator or its templates change, so a cached lake is never stale."""
    import hashlib

    from bench import synth

    h = hashlib.sha256(Path(synth.__file__).read_bytes() + synth.TEMPLATES.read_bytes())
    return h.hexdigest()[:8]


def generator(events: int) -> Generator:
    """The stream for a lake of ``events``: 10 versions per key on average, 1 % deletes,
    one transaction per ms of commit time (so the history spans events/5 ms)."""
    return Generator(keys=max(events // 10, 10), tx_size=5, delete_every=100, tx_interval_us=1000)


def append_events(
    lake: Path, gen: Generator, first: int, n: int, chunk: int = 50_000, store: Store | None = None
) -> int:
    landed = 0
    for start in range(first, first + n, chunk):
        landed += land_chunk(lake, gen.chunk(start, min(chunk, first + n - start)), store=store)
    return landed


def base_lake(events: int, segments: int = 10, *, progress=print) -> Path:  # noqa: ANN001
    """Bronze of ``events`` events in ``segments`` parts, an incremental compaction after each
    (so silver has a snapshot history for time travel). Cached by size."""
    from pipelines.silver import compact

    lake = data_dir() / f"lake-{events}-{segments}-{generator_version()}"
    if (lake / ".complete").exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    gen = generator(events)
    per = max(events // segments - (events // segments) % gen.tx_size, gen.tx_size)
    done = 0
    while done < events:
        n = min(per, events - done)
        n -= n % gen.tx_size
        if n <= 0:
            break
        append_events(lake, gen, done, n)
        done += n
        compact(lake, TABLE, catalog=False)
        progress(f"  base lake: {done:,}/{events:,} events landed and compacted")
    (lake / ".complete").write_text(str(done))
    return lake


def work_copy(base: Path, name: str, *, silver: bool) -> Path:
    """Hard-linked copy of a base lake's bronze (and silver when asked) to mutate freely."""
    dst = data_dir() / f"{name}-pid{os.getpid()}"  # concurrent runs never share a work copy
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    parts = ["bronze"] + (["silver"] if silver else [])
    for part in parts:
        if (base / part).exists():
            subprocess.run(["cp", "-al", str(base / part), str(dst / part)], check=True)
    return dst


def work_lake(
    events: int,
    name: str,
    *,
    silver: bool,
    progress=print,  # noqa: ANN001
) -> tuple[int, Path, Settings]:
    """(events in it, a work copy of the base lake of ``events``, settings with a fresh home
    beside it): what the Iceberg figures start from."""
    from pipelines.config import Settings

    base = base_lake(events, progress=progress)
    n = events_in(base)
    lake = work_copy(base, f"{name}-{n}", silver=silver)
    home = lake.parent / f"{lake.name}-home"
    shutil.rmtree(home, ignore_errors=True)
    return n, lake, Settings(_env_file=None, home=home, lake=lake)


def events_in(lake: Path) -> int:
    return int((lake / ".complete").read_text())
