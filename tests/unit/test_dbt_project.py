"""The dbt project parses from a clean checkout (no ``dbt deps``) and its SCD2 unit tests pass.

The SCD2 logic is tested with dbt's own ``unit_tests:`` (dbt_project/models/intermediate/
_intermediate.yml); they need no lake and no data, only an empty DuckDB file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import REPO_ROOT

pytestmark = pytest.mark.unit
PROJECT = REPO_ROOT / "dbt_project"


def _dbt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("dbt", path=str(Path(sys.executable).parent)) or "dbt"
    env = {
        **os.environ,
        "CHANGELAKE_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "CHANGELAKE_LAKE": str(tmp_path / "lake"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [
            exe,
            *args,
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dbt_parse_from_clean_checkout_lists_the_star_schema(tmp_path: Path) -> None:
    proc = _dbt(tmp_path, "parse")
    assert proc.returncode == 0, proc.stdout[-3000:]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for wanted in (
        "dim_customers",
        "dim_products",
        "dim_date",
        "fct_orders",
        "fct_order_items",
        "fct_inventory_hourly",
        "fct_inventory_history",
        "bronze_complete_files",
    ):
        assert wanted in models
    sources = {(s["source_name"], s["name"]) for s in manifest["sources"].values()}
    assert ("silver", "orders") in sources and ("bronze", "products") in sources
    assert len(manifest.get("unit_tests", {})) >= 2
    kinds = {
        n.get("test_metadata", {}).get("name")
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test"
    }
    assert {
        "unique",
        "not_null",
        "relationships",
        "accepted_values",
        "scd2_no_overlap",
        "scd2_one_current_per_key",
    } <= kinds


def test_dbt_unit_tests_for_scd2_logic_pass(tmp_path: Path) -> None:
    proc = _dbt(tmp_path, "test", "--select", "test_type:unit")
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r"PASS=(\d+) WARN=\d+ ERROR=0 ", proc.stdout)
    assert passed and int(passed.group(1)) >= 2, proc.stdout[-3000:]
