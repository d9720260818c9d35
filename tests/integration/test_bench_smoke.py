"""The stack-backed benchmarks (P1/P6 landing, P2 freshness, on both lake formats, Debezium
reference) on tiny sizes.

Runs against the pytest ``stack`` fixture (``BENCH_USE_ENV_STACK=1``), not a private stack, and
checks only that each figure completes with well-formed, internally consistent results.
"""

from __future__ import annotations

import json

import pytest

from bench import __main__ as runner
from bench.stack import BENCH_DDL

pytestmark = pytest.mark.integration


def test_stack_figures_run_on_tiny_sizes(stack, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    stack.capture(BENCH_DDL, "bench.events", "bench.fresh")
    monkeypatch.setenv("BENCH_USE_ENV_STACK", "1")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "results"
    rc = runner.main(["--only", "P1", "--events", "500", "--smoke", "--results-dir", str(out)])
    assert rc == 0
    rc = runner.main(["--only", "REF", "--seconds", "3", "--smoke", "--results-dir", str(out)])
    assert rc == 0
    p1 = json.loads((out / "P1.smoke.json").read_text())
    assert p1["metrics"]["events_landed"] == 500  # every produced event landed, exactly once
    assert p1["metrics"]["quarantined"] == 0
    p6 = json.loads((out / "P6.smoke.json").read_text())
    assert p6["metrics"]["rss_max_mib"] > 0
    ref = json.loads((out / "REF.smoke.json").read_text())
    assert ref["metrics"]["pgbench_transactions"] > 0
    assert ref["metrics"]["events_in_topic"] >= ref["metrics"]["pgbench_transactions"]
    rc = runner.main(["--only", "P2", "--seconds", "4", "--smoke", "--results-dir", str(out)])
    assert rc == 0
    p2 = json.loads((out / "P2.smoke.json").read_text())
    assert p2["metrics"]["events_measured"] > 0
    assert p2["metrics"]["events_never_seen"] == 0
    assert p2["metrics"]["service_exit_code"] == 0  # SIGTERM: a clean stop
    # P2 on the Iceberg lake: every committed row shows in Iceberg silver's view
    rc = runner.main(["--only", "I5", "--seconds", "4", "--smoke", "--results-dir", str(out)])
    assert rc == 0
    i5 = json.loads((out / "I5.smoke.json").read_text())
    assert i5["params"]["lake_format"] == "iceberg"
    assert i5["metrics"]["events_measured"] > 0
    assert i5["metrics"]["events_never_seen"] == 0
    assert i5["metrics"]["service_exit_code"] == 0
