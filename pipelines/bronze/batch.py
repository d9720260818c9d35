"""One batch of one topic-partition, decoded and written all-or-nothing, and what landing did.

The lander (its own thread or the decode process, see ``sink``/``worker``) calls ``land_batch``
for each batch; recorded real messages replay through it in the tests without Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipelines.bronze.evolution import SchemaWatch
from pipelines.bronze.layout import BatchId
from pipelines.bronze.store import ParquetStore, Store
from pipelines.bronze.writer import WrittenBatch
from pipelines.decode import RawMessage, decode_batch


@dataclass
class LandingResult:
    """What one ``land`` run did.  ``events`` counts change rows landed in table bronze;
    ``per_table`` also lists ``_transactions``; ``offsets`` maps ``topic[partition]`` to the
    (first, last) offsets consumed in this run; ``lag`` to records left at the end."""

    events: int = 0
    files: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    tombstones: int = 0
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    messages: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # fetch/decode/write wall seconds

    def add_time(self, stage: str, since: float) -> float:
        """Add the wall time since ``since`` to ``stage``; return now (to chain stages)."""
        now = time.monotonic()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - since
        return now


def land_batch(
    lake: Path,
    messages: Sequence[RawMessage],
    *,
    topic_prefix: str,
    result: LandingResult | None = None,
    watch: SchemaWatch | None = None,
    store: Store | None = None,
) -> WrittenBatch:
    """Decode one topic-partition's consecutive messages and hand them to ``store`` (default:
    the Parquet lake at ``lake``) as one all-or-nothing batch.

    Public so recorded real messages can be replayed through the same path without Kafka.
    """
    result = result if result is not None else LandingResult()
    watch = watch or SchemaWatch(lake)
    now = datetime.now(UTC)
    t0 = time.monotonic()
    decoded = decode_batch(messages, ingested_at=now, topic_prefix=topic_prefix, lake=lake)
    t0 = result.add_time("decode", t0)
    for table, t in decoded.tables.items():
        if t.num_rows:
            result.warnings += watch.check(table, t.schema)
    result.warnings += decoded.warnings
    first, last = messages[0], messages[-1]
    batch = BatchId(first.topic, first.partition, first.offset, last.offset)
    written = (store or ParquetStore(lake)).write(batch, decoded, now)
    result.add_time("write", t0)
    result.tombstones += decoded.tombstones
    return written
