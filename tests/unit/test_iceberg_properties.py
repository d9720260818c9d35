"""Property: any sequence of landings, crashes and zombie replays leaves every offset once.

A model lander per partition fetches from its position, commits, and on a crash (at any
protocol state; in-process here, real process kills are in test_iceberg_commit.py) restarts
from the table's committed offsets, as a real lander does. Zombies (a consumer that lost its
partition but does not know yet) replay ranges at or before the committed position.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iceberg_lake import SCHEMA, TOPIC, make_batch, settings_for
from pyiceberg.catalog.sql import SqlCatalog

from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, open_catalog
from pipelines.iceberg.commit import CommitState, OffsetGap, commit_batch
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.offsets import TopicPartition
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit
SKIP_EVERY = 7  # offsets divisible by 7 were compacted away: gaps inside every range


class Crash(Exception):
    pass


land = st.tuples(
    st.just("land"),
    st.integers(0, 1),  # partition
    st.integers(0, 9),  # records fetched
    st.sampled_from([None, None, "checking", "staged", "committed"]),  # crash point
)
zombie = st.tuples(st.just("zombie"), st.integers(0, 1), st.integers(0, 6), st.integers(0, 9))
gap = st.tuples(st.just("gap"), st.integers(0, 1), st.integers(0, 3), st.integers(0, 5))
ops = st.lists(st.one_of(land, land, zombie, gap), min_size=1, max_size=14)

_names = (QualifiedName("prop", f"t{i}") for i in itertools.count())


def landed(table) -> Counter:
    table.refresh()
    rows = table.scan(selected_fields=("_kafka_partition", "_offset")).to_arrow()
    return Counter(
        zip(rows["_kafka_partition"].to_pylist(), rows["_offset"].to_pylist(), strict=True)
    )


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SqlCatalog:
    return open_catalog(settings_for(tmp_path_factory.mktemp("iceberg-props")))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_any_crash_and_replay_sequence_lands_every_offset_once(
    catalog: SqlCatalog, sequence: list[tuple]
) -> None:
    table = ensure_table(catalog, BRONZE, next(_names), SCHEMA)
    position = {0: 0, 1: 0}  # each lander's consumer position
    for op in sequence:
        if op[0] == "land":
            _, p, n, crash_at = op
            start = position[p]

            def hook(state: CommitState, crash_at: str | None = crash_at) -> None:
                if state.value == crash_at:
                    raise Crash(state.value)

            try:
                result = commit_batch(
                    table, make_batch(p, start, start + n, skip_every=SKIP_EVERY), on_state=hook
                )
                assert result.state in (CommitState.COMMITTED, CommitState.SKIPPED)
                position[p] = start + n
            except Crash:  # restart: resume where the table says
                position[p] = off.resume_positions(table, TOPIC).get(p, 0)
        elif op[0] == "zombie":  # replays from at or before the committed position
            _, p, back, n = op
            committed = off.resume_positions(table, TOPIC).get(p)
            if committed is not None:
                start = max(0, committed - back)
                result = commit_batch(table, make_batch(p, start, start + n, skip_every=SKIP_EVERY))
                assert result.rows <= max(0, start + n - committed)
        else:  # a batch past the committed position: refused, nothing changes
            _, p, ahead, n = op
            committed = off.resume_positions(table, TOPIC).get(p)
            if committed is not None:
                start = committed + 1 + ahead
                with pytest.raises(OffsetGap):
                    commit_batch(table, make_batch(p, start, start + n, skip_every=SKIP_EVERY))
        ends = off.committed_offsets(table)
        expected = Counter(
            (tp.partition, o) for tp, end in ends.items() for o in range(end) if o % SKIP_EVERY
        )
        assert landed(table) == expected
        assert all(tp.topic == TOPIC for tp in ends)
    assert set(off.committed_offsets(table)) <= {TopicPartition(TOPIC, p) for p in (0, 1)}
