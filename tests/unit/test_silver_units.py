"""Focused silver cases: keyless tables, the DuckDB catalog (same answers as Python), retention
safety, partial snapshots/transactions, the CLI, and clear errors on bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from test_silver_support import T0, TABLE, TXS, Lake, build, event, rows_of
from typer.testing import CliRunner

from pipelines import silver
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit


@pytest.fixture
def lake(tmp_path: Path):
    sc = build([(0, "s0", 0)], TXS, [7])
    lk = Lake(tmp_path)
    for unit in range(len(sc.states)):  # one batch per unit, compact after each
        idx = [i for i, u in enumerate(sc.unit_of) if u == unit]
        lk.land([sc.events[i] for i in idx], [sc.ends[unit]] if unit in sc.ends else [])
        silver.compact(tmp_path, TABLE)
    return tmp_path, sc


def test_catalog_view_and_macros_match_python(lake) -> None:
    root, sc = lake
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        assert rows_of(con.sql('SELECT * FROM "s"."t"').to_arrow_table()) == sc.states[-1]
        for i, ts in enumerate(sc.times):
            for probe in (ts, ts - timedelta(milliseconds=1)):
                sql_rows = con.sql(
                    'SELECT * FROM "s"."as_of_t"(?)', params=[probe]
                ).to_arrow_table()
                assert rows_of(sql_rows) == rows_of(silver.as_of(root, TABLE, probe))
            assert (
                rows_of(con.sql('SELECT * FROM "s"."as_of_t"(?)', params=[ts]).to_arrow_table())
                == sc.states[i]
            )
        h = con.execute('SELECT _op, a, b FROM "s"."history_t"(1)').fetchall()
        assert (
            h
            == sc.versions[1]
            == [("c", "a1", 1), ("u", "a1", 10), ("u", "a1", 11), ("t", None, None)]
        )
    finally:
        con.close()


def test_toast_chain_and_key_change(lake) -> None:
    root, sc = lake
    after_two = silver.as_of(root, TABLE, sc.times[3])  # 3 txs after the snapshot
    assert rows_of(after_two) == {0: ("s0", 0), 1: ("a1", 11), 3: ("b1", 2), 4: ("d", 4)}


def test_history_does_not_borrow_toast_values_across_a_truncate(tmp_path: Path) -> None:
    """Found by the property test: after a truncate, a key change into a key that existed before
    it used to merge both keys' whole histories, so an unchanged-TOAST placeholder of the old
    key took a (NULL) value of the other key. A truncate ends every row's lineage."""
    sc = build(
        [],
        [
            [("write", 0, 0, None, None)],
            [("write", 0, 0, None, None), ("write", 2, 0, "x", None), ("toast", 2, 0, None, None)],
            [
                ("truncate", 0, 0, None, None),
                ("write", 2, 0, None, None),
                ("rekey", 2, 0, None, None),
            ],
        ],
        [0],
    )
    Lake(tmp_path).land(sc.events, list(sc.ends.values()))
    for k, versions in sc.versions.items():
        h = silver.history(tmp_path, TABLE, {"k": k}).to_pydict()
        assert list(zip(h["_op"], h["a"], h["b"], strict=True)) == versions, k


def test_retain_keeps_current_and_newest(lake) -> None:
    root, sc = lake
    before = [m.snapshot_id for m in silver.list_snapshots(root, TABLE)]
    assert len(before) == len(sc.states)
    removed = silver.retain(root, TABLE, keep_last=2, keep_every=timedelta(0))  # no thinning
    assert removed[str(TABLE)] == before[:-2]
    left = [m.snapshot_id for m in silver.list_snapshots(root, TABLE)]
    assert left == before[-2:] and silver.current(root, TABLE).snapshot_id == before[-1]
    with pytest.raises(ValueError):
        silver.retain(root, TABLE, keep_last=0)
    # time travel older than every kept snapshot still works, by replay from bronze
    for i, ts in enumerate(sc.times):
        assert rows_of(silver.as_of(root, TABLE, ts)) == sc.states[i]
    # keep_newer_than protects recent snapshots even beyond keep_last
    assert silver.retain(root, TABLE, keep_last=1, keep_newer_than=T0)[str(TABLE)] == []


def test_retain_thins_old_snapshots_to_one_per_interval(lake) -> None:
    """``keep_every`` keeps the newest snapshot of each interval of watermark time."""
    root, sc = lake
    before = silver.list_snapshots(root, TABLE)
    tiny = silver.retain(root, TABLE, keep_last=1, keep_every=timedelta(microseconds=1))
    assert tiny[str(TABLE)] == []  # every snapshot is the newest of its own interval
    wide = silver.retain(root, TABLE, keep_last=1, keep_every=timedelta(days=3650))
    assert wide[str(TABLE)] == [m.snapshot_id for m in before[:-1]]  # one interval: newest only
    for i, ts in enumerate(sc.times):
        assert rows_of(silver.as_of(root, TABLE, ts)) == sc.states[i]


def test_partial_snapshot_and_missing_end_are_not_compacted(tmp_path: Path) -> None:
    sc = build([(1, "x", 1), (2, "y", 2), (3, "z", 3)], [[("write", 1, 0, "x2", 9)]], [0])
    lk = Lake(tmp_path)
    lk.land(sc.events[:2])  # snapshot rows without the one marked 'last'
    r = silver.compact(tmp_path, TABLE)
    assert not r.changed and silver.current(tmp_path, TABLE) is None
    lk.land(sc.events[2:])  # the rest of the snapshot, and the tx, but not its END yet
    silver.compact(tmp_path, TABLE)
    assert silver.current(tmp_path, TABLE).rows == 3
    assert silver.current(tmp_path, TABLE).watermark_lsn == 9000
    lk.land([], [sc.ends[1]])
    r = silver.compact(tmp_path, TABLE)
    assert r.changed and r.events_applied == 1 and r.watermark_lsn == sc.events[-1]["_commit_lsn"]


def test_keyless_table_is_append_only(tmp_path: Path) -> None:
    lk = Lake(tmp_path, key=[])
    mk = lambda op, k, lsn, commit, order, **kw: event(  # noqa: E731
        k=k,
        a="v",
        b=lsn,
        _op=op,
        _source_ts=T0 + timedelta(seconds=commit),
        _lsn=lsn,
        _commit_lsn=commit,
        _tx_id=commit,
        _tx_order=order,
        _snapshot="false",
        _unavailable=[],
        **kw,
    )
    evs = [
        mk("c", 1, 10, 100, 1),
        mk("c", 1, 11, 100, 2),
        mk("u", 1, 12, 101, 1),
        mk("d", 1, 13, 102, 1),
    ]
    ends = [
        {
            "status": "END",
            "id": f"{c}:{c}",
            "event_count": n,
            "ts": T0,
            "data_collections": [{"data_collection": "s.t", "event_count": n}],
        }
        for c, n in ((100, 2), (101, 1), (102, 1))
    ]
    lk.land(evs + evs[:1], ends)  # the first event re-delivered: collapses
    silver.compact(tmp_path, TABLE)
    t = silver.as_of(tmp_path, TABLE, T0 + timedelta(days=1))
    assert sorted(t.column("b").to_pylist()) == [10, 11, 12]


def test_bad_input_gives_clear_errors(lake) -> None:
    root, _ = lake
    with pytest.raises(ValueError, match="expected 1 value"):
        silver.history(root, TABLE, (1, 2))
    with pytest.raises(ValueError, match="key must name"):
        silver.history(root, TABLE, {"nope": 1})
    with pytest.raises(silver.NoSilverData):
        silver.as_of(root, QualifiedName("s", "missing"), T0)
    with pytest.raises(duckdb.Error):  # --where runs with no access outside the lake
        silver.as_of(root, TABLE, T0, where="k IN (SELECT 1 FROM read_csv('/etc/passwd'))")


def test_manifest_and_result_metadata(lake) -> None:
    root, sc = lake
    m = silver.current(root, TABLE)
    raw = json.loads((root / "silver/s/t/current/manifest.json").read_text())
    assert (
        raw["snapshot_id"] == m.snapshot_id
        and raw["parent"]
        and raw["rows"] == len(sc.states[-1]) == 1
    )
    assert m.watermark_time == sc.times[-1]
    assert {c["name"] for c in m.schema} >= {"k", "a", "b", "_commit_lsn", "_source_ts"}
    r = silver.compact(root, TABLE)  # nothing new: no new snapshot
    assert not r.changed and r.snapshot_id == m.snapshot_id


def test_cli_as_of_history_and_compact(lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import app

    root, sc = lake
    monkeypatch.setenv("CHANGELAKE_LAKE", str(root))
    monkeypatch.setenv("CHANGELAKE_TABLES", "s.t")
    runner = CliRunner()
    res = runner.invoke(
        app, ["as-of", "s.t", sc.times[1].isoformat(), "--format", "csv", "--where", "b > 0"]
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("k,a,b") and len(lines) == 1 + 2  # keys 1 and 2 (b>0)
    out = root / "h.parquet"
    res = runner.invoke(app, ["history", "s.t", "1", "--format", "parquet", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).column("_op").to_pylist() == ["c", "u", "u", "t"]
    res = runner.invoke(app, ["compact", "--full"])
    assert res.exit_code == 0, res.output
    assert silver.current(root, TABLE).full
    res = runner.invoke(app, ["as-of", "s.t", "not-a-time"])
    assert res.exit_code != 0


def test_incremental_snapshot_reads_order_after_their_commit_lsn(tmp_path: Path) -> None:
    """Debezium's chunk rows carry no _lsn and no transaction, and the stream's last commit LSN
    when the chunk's window closed: they sort after that commit's changes and before later ones,
    never stall the transaction cut, and are not lost when they land after a compaction that
    already took changes of that same commit LSN."""
    lk = Lake(tmp_path)

    def streamed(op: str, k: int, a: str | None, lsn: int, commit: int, order: int) -> dict:
        return event(
            k=k, a=a, b=lsn, _op=op, _source_ts=T0 + timedelta(seconds=commit), _lsn=lsn,
            _commit_lsn=commit, _tx_id=commit, _tx_order=order, _snapshot="false",
            _unavailable=[],
        )  # fmt: skip

    def read(k: int, a: str, commit: int) -> dict:
        return event(
            k=k, a=a, b=0, _op="r", _source_ts=T0 + timedelta(seconds=commit), _lsn=None,
            _commit_lsn=commit, _tx_id=None, _tx_order=None, _snapshot="incremental",
            _unavailable=[],
        )  # fmt: skip

    def end(commit: int, n: int) -> dict:
        return {
            "status": "END",
            "id": f"{commit}:{commit}",
            "event_count": n,
            "ts": T0,
            "data_collections": [{"data_collection": "s.t", "event_count": n}],
        }

    lk.land([streamed("u", 1, "old", 95, 100, 1)], [end(100, 1)])
    first = silver.compact(tmp_path, TABLE)
    assert first.watermark_lsn == 100
    # the chunk closed with commit 100 as the stream's last: it lands after that compaction
    lk.land([read(1, "chunk", 100), read(2, "chunk", 100), read(3, "chunk", 100)])
    lk.land([streamed("u", 2, "new", 120, 130, 1), streamed("d", 3, None, 121, 131, 1)])
    lk.land([], [end(130, 1), end(131, 1)])
    silver.compact(tmp_path, TABLE)
    got = rows_of(silver.as_of(tmp_path, TABLE, T0 + timedelta(days=1)))
    assert {k: v[0] for k, v in got.items()} == {1: "chunk", 2: "new"}
    rebuilt = silver.compact(tmp_path, TABLE, full=True)
    assert rebuilt.rows == 2
