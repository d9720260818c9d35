"""Exactly-once commits of Kafka batches to one Iceberg table: a small named state machine.

One batch = rows from known Kafka ranges (``OffsetRange`` per topic-partition) = at most one
Iceberg snapshot, whose summary carries the table's complete committed-offsets map
(``offsets``). The states are the crash points::

    CHECKING --(all ranges already committed)--------------------------> SKIPPED
    CHECKING --(plan: keep rows past the committed offsets)--> STAGED --> COMMITTED
                                                               STAGED --(CommitFailed)--> CONFLICT
    CONFLICT --(refresh; attempts left)--> CHECKING         CONFLICT --(none left)--> raise

- crash in/after CHECKING: nothing was written.
- crash in STAGED (data files and manifests written, catalog not yet pointing at them):
  the files are orphans no snapshot references; the table is unchanged, the retry appends.
- crash after COMMITTED (before the caller learns it / acks Kafka): the snapshot and its
  offsets are in the table; the retry finds them in CHECKING and skips (or trims).

So retrying ``commit_batch`` with the same batch after any failure, including an exception
whose outcome is unknown, neither duplicates nor loses rows: the table's own offsets decide.

Offsets are checked per partition against the committed position ``c``: ``end <= c`` is
already in (skip), ``start == c`` appends, ``start < c < end`` overlaps and is trimmed to the
rows at offsets ``>= c``, ``start > c`` would lose events and raises ``OffsetGap``. A partition
never committed accepts any start. A batch whose rows are all gone but whose ranges advance
(control records, compacted gaps) still commits an empty snapshot, so the position advances.

Concurrency: the append asserts the branch head it was planned on, so two committers cannot
both win; the loser gets ``CommitFailedException``, refreshes and plans again from the new
offsets (pyiceberg's own rebasing retry is off, see ``catalog``). Iceberg has no multi-table
transaction: each table carries its own offsets for the partitions whose rows it holds, so
each table is exactly-once on its own, and a consumer resumes every partition from the
table(s) it feeds (docs/iceberg.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from pipelines.contract import ICEBERG_COLUMN_NAMES
from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import PYICEBERG_RETRIES, conflict_backoff
from pipelines.iceberg.offsets import OffsetRange, Offsets, TopicPartition

# the per-row Kafka coordinates (topic, partition, offset) a batch's rows carry: bronze's
# metadata columns, as Iceberg names them (``_partition`` is reserved there, see ``conform``);
# quarantine rows name theirs without the underscore
BRONZE_COORDINATES = ("_topic", ICEBERG_COLUMN_NAMES["_partition"], "_offset")
QUARANTINE_COORDINATES = ("topic", "partition", "offset")


class CommitState(Enum):
    CHECKING = "checking"
    SKIPPED = "skipped"
    STAGED = "staged"
    COMMITTED = "committed"
    CONFLICT = "conflict"


class OffsetGap(RuntimeError):
    """A batch starts past the committed position: committing it would lose events."""


class CommitConflict(RuntimeError):
    """Concurrent commits kept winning for every attempt; the batch is not committed."""


@dataclass(frozen=True)
class Batch:
    rows: pa.Table
    ranges: Mapping[TopicPartition, OffsetRange]
    commit_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    coordinates: tuple[str, str, str] = BRONZE_COORDINATES  # topic, partition, offset columns


@dataclass(frozen=True)
class Plan:
    rows: pa.Table  # what to append (the batch's rows minus the already committed ones)
    offsets: Offsets  # the table's complete map after the commit
    skip: bool  # every range is already committed


@dataclass(frozen=True)
class CommitResult:
    state: CommitState  # COMMITTED or SKIPPED
    rows: int  # rows appended by this call
    offsets: Offsets
    snapshot_id: int | None
    attempts: int


def plan_commit(committed: Offsets, batch: Batch) -> Plan:
    """Decide what of ``batch`` to append on top of ``committed`` (pure; raises OffsetGap)."""
    offsets = dict(committed)
    keep: dict[TopicPartition, int] = {}  # partition -> first offset to keep
    for tp, rng in batch.ranges.items():
        c = committed.get(tp)
        if c is not None and rng.end <= c:
            continue
        if c is not None and rng.start > c:
            raise OffsetGap(f"{tp.key}: batch starts at {rng.start} but {c} is committed")
        keep[tp] = rng.start if c is None else max(c, rng.start)
        offsets[tp] = rng.end
    rows = _rows_from(batch, keep)
    return Plan(rows=rows, offsets=offsets, skip=not keep)


def _rows_from(batch: Batch, keep: dict[TopicPartition, int]) -> pa.Table:
    rows = batch.rows
    if rows.num_rows == 0:
        return rows
    topic, part, offset = (rows[c] for c in batch.coordinates)
    mask = None
    for tp, rng in batch.ranges.items():
        inside = pc.and_(pc.equal(topic, tp.topic), pc.equal(part, tp.partition))
        out_of_range = pc.or_(pc.less(offset, rng.start), pc.greater_equal(offset, rng.end))
        if pc.any(pc.and_(inside, out_of_range)).as_py():
            raise ValueError(f"{tp.key}: batch rows outside [{rng.start}, {rng.end})")
        if tp in keep:
            wanted = pc.and_(inside, pc.greater_equal(offset, keep[tp]))
            mask = wanted if mask is None else pc.or_(mask, wanted)
    if mask is None:
        return rows.slice(0, 0)
    return rows.filter(mask)


def _check_rows_covered(batch: Batch) -> None:
    rows = batch.rows
    if rows.num_rows == 0:
        return
    topic, partition = batch.coordinates[:2]
    pairs = rows.select([topic, partition]).group_by([topic, partition]).aggregate([])
    for t, p in zip(pairs[topic].to_pylist(), pairs[partition].to_pylist(), strict=True):
        if TopicPartition(t, p) not in batch.ranges:
            raise ValueError(f"batch rows from {t}[{p}], which has no offset range")


def commit_batch(
    table: Table,
    batch: Batch,
    *,
    max_attempts: int = 8,
    on_state: Callable[[CommitState], None] | None = None,
    backoff_s: float = 0.05,
) -> CommitResult:
    """Append ``batch`` to ``table`` exactly once (see the module docstring); safe to retry."""
    if table.properties.get(PYICEBERG_RETRIES) != "0":
        raise RuntimeError(
            f"{'.'.join(table.name())}: {PYICEBERG_RETRIES} must be 0 "
            "(pyiceberg's retry would commit a stale offsets map); open it with ensure_table"
        )
    _check_rows_covered(batch)

    def enter(state: CommitState) -> None:
        if on_state is not None:
            on_state(state)

    for attempt in range(1, max_attempts + 1):
        table.refresh()  # plan on the newest offsets (a stale plan would only lose the race)
        enter(CommitState.CHECKING)
        plan = plan_commit(off.committed_offsets(table), batch)
        if plan.skip:
            enter(CommitState.SKIPPED)
            return CommitResult(CommitState.SKIPPED, 0, plan.offsets, None, attempt)
        tx = table.transaction()
        tx.append(plan.rows, snapshot_properties=_summary(batch, plan))
        enter(CommitState.STAGED)
        try:
            table = tx.commit_transaction()
        except CommitFailedException:
            enter(CommitState.CONFLICT)
            conflict_backoff(attempt, backoff_s)
            continue
        enter(CommitState.COMMITTED)
        snapshot = table.current_snapshot()
        return CommitResult(
            CommitState.COMMITTED,
            plan.rows.num_rows,
            plan.offsets,
            snapshot.snapshot_id if snapshot else None,
            attempt,
        )
    raise CommitConflict(
        f"{'.'.join(table.name())}: batch {batch.commit_id} lost {max_attempts} commit races"
    )


def _summary(batch: Batch, plan: Plan) -> dict[str, str]:
    return {
        off.OFFSETS_KEY: off.encode(plan.offsets),
        off.COMMIT_ID_KEY: batch.commit_id,
        off.BATCH_KEY: off.encode_ranges(dict(batch.ranges)),
    }
