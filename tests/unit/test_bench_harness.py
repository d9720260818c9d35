"""The benchmark harness on tiny sizes (no services): it runs, and its results are well formed.

Not a timed test: it checks that synthetic events keep the recorded connector's exact shape and
decode without quarantine, that the lake-only figures (P3, P4, P5) produce consistent results,
and that the target verdicts and the Markdown table are computed correctly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest

from bench import __main__ as runner
from bench.common import Target, percentile, rows_differing
from bench.report import markdown
from bench.synth import TEMPLATES, Generator, Templates
from pipelines.decode import decode_batch

pytestmark = pytest.mark.unit


def _recorded() -> list[dict]:
    return [orjson.loads(line) for line in TEMPLATES.read_bytes().splitlines() if line.strip()]


def test_synthetic_messages_keep_the_recorded_schema_and_keys() -> None:
    t = Templates.load()
    gen = Generator(t, keys=7, tx_size=5, delete_every=3)
    chunk = gen.chunk(0, 40)
    recorded_heads = {
        r["value"].encode()[: r["value"].index(',"payload":')] for r in _recorded() if r["value"]
    }
    for m in chunk.table + chunk.tx:
        if m.value is None:
            continue
        assert m.value[: m.value.index(b',"payload":')] in recorded_heads  # schema verbatim
        recorded_fields = set(
            orjson.loads(
                next(r["value"] for r in _recorded() if r["value"] and r["topic"] == m.topic)
            )["payload"]
        )
        assert set(orjson.loads(m.value)["payload"]) == recorded_fields
    offsets = [m.offset for m in chunk.table]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    assert len(chunk.tx) == 2 * 40 // 5


def test_synthetic_events_decode_without_quarantine_and_in_order() -> None:
    gen = Generator(keys=10, tx_size=5, delete_every=4)
    chunk = gen.chunk(0, 60)
    d = decode_batch(chunk.table + chunk.tx, ingested_at=datetime.now(UTC), topic_prefix="bench")
    assert d.quarantine.num_rows == 0
    (table,) = d.tables.values()
    assert table.num_rows == 60
    rows = table.select(["id", "_op", "_commit_lsn", "_lsn", "_tx_id", "_tx_order"]).to_pylist()
    assert [r["id"] for r in rows] == [i % 10 for i in range(60)]
    assert {r["_op"] for r in rows[:10]} == {"c"}
    assert all(a["_lsn"] < b["_lsn"] for a, b in zip(rows, rows[1:], strict=False))
    assert all(r["_commit_lsn"] < r["_lsn"] for r in rows)
    assert d.tombstones == sum(1 for r in rows if r["_op"] == "d") > 0
    ends = [t for t in d.transactions.to_pylist() if t["status"] == "END"]
    assert len(ends) == 12 and all(e["event_count"] == 5 for e in ends)


def test_target_verdicts_and_percentiles() -> None:
    assert Target("x", 0.85, ">=", 0.8, "x").met is True
    miss = Target("x", 40_000, ">=", 50_000, "ev/s")
    assert miss.met is False and miss.gap == "20% short"
    assert Target("t", 30, "<=", 15, "s").gap == "2.0x over"
    assert Target("t", None, "<=", 15, "s").met is None
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([], 50) is None


def test_rows_differing_is_content_not_order_or_count() -> None:
    a = pa.table({"id": [1, 2, 3], "v": ["x", None, "z"]})
    assert rows_differing(a, a.take([2, 0, 1])) == 0
    assert rows_differing(a, pa.table({"id": [1, 2, 3], "v": ["x", None, "Z"]})) == 2
    assert rows_differing(a, a.take([0, 0, 1])) == 2  # same count, a duplicate instead of a row


def test_lake_figures_run_on_tiny_sizes(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "results"
    rc = runner.main(["--only", "P3,P5", "--events", "500", "--smoke", "--results-dir", str(out)])
    assert rc == 0
    results = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(results) == {"P3.smoke.json", "P4.smoke.json", "P5.smoke.json"}
    for r in results.values():
        assert r["machine"]["cpus"] >= 1 and len(r["load"]["before"]) == 3
        assert r["command"].startswith("python -m bench --only")
        checked = [t for t in r["targets"] if t["op"] != "info"]
        assert checked and all(t["met"] in (True, False) for t in checked)
    p4 = results["P4.smoke.json"]["metrics"]
    assert p4["rows_out"] == p4["rows_full_rebuild"] > 0
    assert p4["rows_differing"] == 0  # incremental == full rebuild, value for value
    assert results["P5.smoke.json"]["metrics"]["rows_differing"] == 0  # snapshots == replay
    md = markdown(list(results.values()))
    header = next(line for line in md.splitlines() if line.startswith("| Figure"))
    rows = [line for line in md.splitlines() if line.startswith("| P")]
    assert len(rows) == 5 and all(r.count("|") == header.count("|") for r in rows)
