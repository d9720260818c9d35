"""``changelake dbt ...`` runs dbt on dbt_project/ with this home's warehouse, from anywhere.

The real CLI and the real dbt, no services: ``dbt debug`` opens the warehouse through the
profile, so the file appearing under CHANGELAKE_HOME shows the settings reached dbt; the
exit status and dbt's own usage errors pass through unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CHANGELAKE = str(Path(sys.executable).with_name("changelake"))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cwd = tmp_path / "elsewhere"  # not the checkout: the project is found without cd
    cwd.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CHANGELAKE_HOME": str(tmp_path / "home"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("CHANGELAKE_WAREHOUSE", None)
    env.pop("CHANGELAKE_LAKE", None)
    return subprocess.run(
        [CHANGELAKE, "dbt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dbt_debug_uses_the_project_and_this_homes_warehouse(tmp_path: Path) -> None:
    proc = _run(tmp_path, "debug", "--log-path", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "All checks passed!" in proc.stdout
    assert (tmp_path / "home" / "warehouse.duckdb").is_file()


def test_dbt_exit_status_and_usage_errors_pass_through(tmp_path: Path) -> None:
    proc = _run(tmp_path, "no-such-command")
    assert proc.returncode == 2
    assert "No such command 'no-such-command'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dbt_help_is_dbts_own(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--help")
    assert proc.returncode == 0
    assert "build" in proc.stdout and "snapshot" in proc.stdout  # dbt's commands, all of them
