"""Property tests: silver (incremental, full, as_of, history) equals a reference model over
random interleaved transactions with inserts, updates, key changes, deletes, re-deliveries,
unchanged-TOAST placeholders, truncates, and batches that split transactions."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_silver_support import TABLE, Lake, Scenario, build, rows_of

from pipelines import silver

pytestmark = pytest.mark.unit

KEYS = st.integers(0, 3)
VALS = st.one_of(st.none(), st.sampled_from(["x", "y", "long-" * 5]))
INTS = st.one_of(st.none(), st.integers(-3, 3))
SPEC = st.tuples(
    st.sampled_from(["write", "write", "toast", "delete", "rekey", "truncate"]),
    KEYS,
    KEYS,
    VALS,
    INTS,
)
SCENARIO = st.builds(
    build,
    st.lists(st.tuples(KEYS, VALS, INTS), max_size=4),
    st.lists(st.lists(SPEC, min_size=1, max_size=4), min_size=1, max_size=6),
    st.lists(st.integers(0, 60), min_size=1, max_size=8),
)


def _expected(sc: Scenario, landed: int) -> dict:
    """Model state after the last unit whose events (and END) have all landed."""
    done = -1
    for unit in range(len(sc.states)):
        idx = [i for i, u in enumerate(sc.unit_of) if u == unit]
        if idx and max(idx) < landed:
            done = unit
        else:
            break
    return sc.states[done] if done >= 0 else {}


def _silver_rows(lake: Path) -> dict:
    cur = silver.current(lake, TABLE)
    if cur is None:
        return {}
    import pyarrow.parquet as pq

    return rows_of(pq.read_table(lake / "silver/s/t/current/part-0.parquet"))


# Example count from the hypothesis profile (tests/conftest.py): 12 locally, 200 under CI=true.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sc=SCENARIO,
    cuts=st.lists(st.integers(1, 40), max_size=4),
    replay=st.integers(0, 3),
    data=st.data(),
)
def test_incremental_full_and_as_of_match_model(
    sc: Scenario, cuts: list[int], replay: int, data: st.DataObject
) -> None:
    assume(sc.states)
    n = len(sc.events)
    bounds = sorted({c for c in cuts if c < n}) + [n]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lake, start = Lake(root), 0
        for end in bounds:
            again = sc.events[max(0, start - replay) : start]  # Connect replays after a restart
            ends = [
                sc.ends[u]
                for u in sorted(set(sc.unit_of[start:end]))
                if u in sc.ends and max(i for i, x in enumerate(sc.unit_of) if x == u) < end
            ]
            lake.land(again + sc.events[start:end], ends)
            silver.compact(root, TABLE, catalog=False)
            assert _silver_rows(root) == _expected(sc, end)
            start = end
        final = _silver_rows(root)
        assert final == sc.states[-1]
        full = silver.compact(root, TABLE, full=True, catalog=False)
        assert full.changed and _silver_rows(root) == final
        for i, ts in enumerate(sc.times):  # as_of at every commit, and just before it
            assert rows_of(silver.as_of(root, TABLE, ts)) == sc.states[i]
            before = sc.states[i - 1] if i else {}
            assert rows_of(silver.as_of(root, TABLE, ts - timedelta(milliseconds=1))) == before
        for k, versions in sc.versions.items():
            h = silver.history(root, TABLE, {"k": k}).to_pydict()
            got = list(zip(h["_op"], h["a"], h["b"], strict=True))
            assert got == versions, k
