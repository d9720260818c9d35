"""The exactly-once Iceberg commit protocol on real pyiceberg, a real SQLite catalog, local disk.

Crashes are real process deaths (``os._exit`` in a child committer at a protocol state);
concurrency is real processes racing on the same catalog.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from iceberg_lake import (
    CRASH_EXIT,
    SCHEMA,
    TABLE,
    TOPIC,
    make_batch,
    run_child,
    settings_for,
    start_child,
)
from pyiceberg.table import Table

from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog
from pipelines.iceberg.commit import (
    Batch,
    CommitState,
    OffsetGap,
    commit_batch,
)
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.offsets import LostOffsets, OffsetRange, TopicPartition
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit
TP0 = TopicPartition(TOPIC, 0)
FOREIGN = QualifiedName("shop", "foreign")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def table(home: Path) -> Table:
    return ensure_table(open_catalog(settings_for(home)), BRONZE, TABLE, SCHEMA)


def reopen(home: Path) -> Table:
    """The table as a fresh process sees it: a new catalog connection, nothing cached."""
    return load_table(open_catalog(settings_for(home)), BRONZE, TABLE)


def landed(table: Table) -> Counter[tuple[int, int]]:
    table.refresh()
    rows = table.scan(selected_fields=("_kafka_partition", "_offset")).to_arrow()
    return Counter(
        zip(rows["_kafka_partition"].to_pylist(), rows["_offset"].to_pylist(), strict=True)
    )


def exactly(partition: int, end: int, skip_every: int = 0) -> Counter[tuple[int, int]]:
    return Counter((partition, o) for o in range(end) if not (skip_every and o % skip_every == 0))


def data_files_on_disk(table: Table) -> set[str]:
    return {
        str(p) for p in Path(table.location().removeprefix("file://"), "data").glob("*.parquet")
    }


def referenced_files(table: Table) -> set[str]:
    table.refresh()
    return {t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()}


def test_append_recover_resume(home: Path, table: Table) -> None:
    first = commit_batch(table, make_batch(0, 0, 10))
    second = commit_batch(table, make_batch(0, 10, 25))
    assert (first.state, first.rows, second.rows) == (CommitState.COMMITTED, 10, 15)
    fresh = reopen(home)
    assert off.committed_offsets(fresh) == {TP0: 25}
    assert off.resume_positions(fresh, TOPIC) == {0: 25}
    assert landed(fresh) == exactly(0, 25)
    summary = fresh.current_snapshot().summary
    assert json.loads(summary[off.OFFSETS_KEY]) == {f"{TOPIC}[0]": 25}
    assert json.loads(summary[off.BATCH_KEY]) == {f"{TOPIC}[0]": [10, 25]}
    assert summary[off.COMMIT_ID_KEY]


def test_replayed_batch_is_skipped_and_overlap_trimmed(table: Table) -> None:
    commit_batch(table, make_batch(0, 0, 20))
    snapshots = len(table.snapshots())
    again = commit_batch(table, make_batch(0, 5, 20))
    assert (again.state, again.rows) == (CommitState.SKIPPED, 0)
    assert len(table.snapshots()) == snapshots  # no empty snapshot for a replay
    overlap = commit_batch(table, make_batch(0, 15, 30))
    assert (overlap.state, overlap.rows) == (CommitState.COMMITTED, 10)
    assert landed(table) == exactly(0, 30)


def test_gap_is_refused(table: Table) -> None:
    commit_batch(table, make_batch(0, 0, 10))
    with pytest.raises(OffsetGap, match=r"starts at 11 but 10 is committed"):
        commit_batch(table, make_batch(0, 11, 20))
    assert landed(table) == exactly(0, 10)


def test_positions_advance_over_gaps_and_empty_ranges(table: Table) -> None:
    commit_batch(table, make_batch(0, 0, 10, skip_every=3))  # offsets 0, 3, 6, 9 compacted away
    empty = commit_batch(table, Batch(SCHEMA.empty_table(), {TP0: OffsetRange(10, 14)}))
    assert (empty.state, empty.rows) == (CommitState.COMMITTED, 0)
    assert off.committed_offsets(table) == {TP0: 14}
    commit_batch(table, make_batch(0, 14, 16))
    assert landed(table) == exactly(0, 10, skip_every=3) + Counter({(0, 14): 1, (0, 15): 1})


def test_one_snapshot_carries_every_partition(table: Table) -> None:
    commit_batch(table, make_batch(1, 0, 5))
    two = make_batch(0, 0, 3)
    three = make_batch(2, 7, 9)
    rows = pa.concat_tables([two.rows, three.rows])
    result = commit_batch(table, Batch(rows, {**two.ranges, **three.ranges}))
    assert result.rows == 5
    tp1, tp2 = TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 2)
    assert off.committed_offsets(table) == {TP0: 3, tp1: 5, tp2: 9}


def test_rows_must_match_their_ranges(table: Table) -> None:
    batch = make_batch(0, 0, 10)
    with pytest.raises(ValueError, match="outside"):
        commit_batch(table, Batch(batch.rows, {TP0: OffsetRange(0, 5)}))
    with pytest.raises(ValueError, match="no offset range"):
        commit_batch(table, Batch(batch.rows, {TopicPartition(TOPIC, 1): OffsetRange(0, 10)}))
    assert landed(table) == Counter()


def test_pyiceberg_rebasing_retry_is_refused(table: Table) -> None:
    with table.transaction() as tx:
        tx.set_properties({"commit.retry.num-retries": "4"})
    with pytest.raises(RuntimeError, match="must be 0"):
        commit_batch(table, make_batch(0, 0, 1))


def test_offsets_survive_foreign_snapshots_but_are_never_guessed(home: Path, table: Table) -> None:
    commit_batch(table, make_batch(0, 0, 4))
    table.append(make_batch(5, 0, 1).rows)  # another writer, no offsets in its summary
    assert off.committed_offsets(table) == {TP0: 4}
    other = ensure_table(open_catalog(settings_for(home)), BRONZE, FOREIGN, SCHEMA)
    other.append(make_batch(0, 0, 1).rows)
    with pytest.raises(LostOffsets):
        off.committed_offsets(other)


def test_losing_a_race_replans_from_the_winners_offsets(home: Path, table: Table) -> None:
    """A zombie and the new owner of partition 0 both commit; the loser trims, nothing twice."""
    rival = reopen(home)
    states: list[CommitState] = []

    def meanwhile(state: CommitState) -> None:
        states.append(state)
        if state is CommitState.STAGED and states.count(CommitState.STAGED) == 1:
            commit_batch(rival, make_batch(0, 0, 12))  # wins while ours is staged

    result = commit_batch(table, make_batch(0, 0, 20), on_state=meanwhile)
    assert states == [
        CommitState.CHECKING,
        CommitState.STAGED,
        CommitState.CONFLICT,
        CommitState.CHECKING,
        CommitState.STAGED,
        CommitState.COMMITTED,
    ]
    assert (result.attempts, result.rows) == (2, 8)
    assert landed(table) == exactly(0, 20)
    assert off.committed_offsets(reopen(home)) == {TP0: 20}


@pytest.mark.parametrize("crash_at", ["checking", "staged", "committed"])
def test_killed_committer_recovers_without_duplicates_or_loss(
    home: Path, table: Table, crash_at: str
) -> None:
    died = run_child(home, 0, [[0, 10], [10, 20]], crash_at=crash_at, crash_batch=1)
    assert died.returncode == CRASH_EXIT, died.stderr
    fresh = reopen(home)
    expected_end = 20 if crash_at == "committed" else 10
    assert off.committed_offsets(fresh) == {TP0: expected_end}
    assert landed(fresh) == exactly(0, expected_end)
    orphans = data_files_on_disk(fresh) - referenced_files(fresh)
    assert len(orphans) == (1 if crash_at == "staged" else 0)  # written, never committed

    # the restarted lander replays the unacknowledged batch from its last Kafka commit
    redo = run_child(home, 0, [[10, 20], [20, 30]])
    assert redo.returncode == 0, redo.stderr
    first = json.loads(redo.stdout.splitlines()[0])
    assert first["state"] == ("skipped" if crash_at == "committed" else "committed")
    assert landed(fresh) == exactly(0, 30)
    assert off.committed_offsets(reopen(home)) == {TP0: 30}


def test_concurrent_committer_processes(home: Path, table: Table) -> None:
    """Three partitions in three processes, plus two zombies replaying partition 0's batches."""
    batches = [[i * 5, i * 5 + 5] for i in range(8)]
    procs = [start_child(home, p, batches) for p in (0, 1, 2)]
    procs += [start_child(home, 0, batches) for _ in range(2)]
    attempts = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        attempts += sum(json.loads(line)["attempts"] for line in out.splitlines())
    assert landed(table) == exactly(0, 40) + exactly(1, 40) + exactly(2, 40)
    ends = {TopicPartition(TOPIC, p): 40 for p in (0, 1, 2)}
    assert off.committed_offsets(reopen(home)) == ends
    print(f"{len(procs)} committers, {len(procs) * len(batches)} commits, {attempts} attempts")
