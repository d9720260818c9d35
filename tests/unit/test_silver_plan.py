"""``plan.materialize_events``: pruning transaction ENDs by commit time never changes the answer.

The property tests cover the rows compaction and ``as_of`` produce; these pin the one case they
cannot reach: an END whose ``ts`` lies before the pruning bound (a clock step back), which the
first, pruned cut misses and the fallback must recover.
"""

# ruff: noqa: S608  -- test data written with SQL built from constants of this file
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.silver import plan
from pipelines.silver.bronze_io import parquet_source

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _lake(tmp_path: Path, end_ts: str) -> tuple[str, str]:
    """Three one-event transactions of s.t after LSN 5, their ENDs committed at ``end_ts``."""
    ev, tx = tmp_path / "ev.parquet", tmp_path / "tx.parquet"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"""COPY (SELECT i AS id, 'c' AS _op, i * 10 AS _commit_lsn, i * 10 - 1 AS _lsn,
                       i AS _tx_id, 1 AS _tx_order, NULL::VARCHAR AS _snapshot,
                       TIMESTAMPTZ '{NOW.isoformat()}' AS _source_ts, 0 AS _partition,
                       i AS _offset, []::VARCHAR[] AS _unavailable
                FROM range(1, 4) r(i)) TO '{ev}' (FORMAT parquet)"""
        )
        con.execute(
            f"""COPY (SELECT 'END' AS status, i || ':' || (i * 10) AS id, 1 AS event_count,
                       [struct_pack(data_collection := 's.t', event_count := 1)]
                           AS data_collections,
                       TIMESTAMPTZ '{end_ts}' AS ts
                FROM range(1, 4) r(i)) TO '{tx}' (FORMAT parquet)"""
        )
    return parquet_source([ev]), parquet_source([tx])


@pytest.mark.parametrize(
    "end_ts",
    [NOW.isoformat(), "2000-01-01T00:00:00+00:00"],  # as committed / clock stepped back
    ids=["ends-in-range", "ends-before-bound"],
)
def test_pruned_ends_never_change_the_events(tmp_path: Path, end_ts: str) -> None:
    ev, tx = _lake(tmp_path, end_ts)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        plan.materialize_events(
            con,
            "e",
            source=ev,
            columns=["id"],
            tx_source=tx,
            data_collection="s.t",
            after_lsn="5",
            since=NOW,
        )
        got = [r[0] for r in con.execute("SELECT id FROM e ORDER BY id").fetchall()]
    assert got == [1, 2, 3]


def test_an_incomplete_transaction_still_cuts(tmp_path: Path) -> None:
    """Without any END the first transaction is incomplete: nothing may be used, pruned or not."""
    ev, _ = _lake(tmp_path, NOW.isoformat())
    with duckdb.connect() as con:
        plan.materialize_events(
            con, "e", source=ev, columns=["id"], tx_source=None, data_collection="s.t", since=NOW
        )
        assert con.execute("SELECT count(*) FROM e").fetchall()[0][0] == 0
