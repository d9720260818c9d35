"""The Dagster instance folder (DAGSTER_HOME) that `make demo` and `make ui` share.

Runs launched by the demo and the UI land in one instance, so the UI shows the demo's
materialisations; its dagster.yaml (from the template next to this file) limits the warehouse
and landing pools to one writer at a time. Its workspace.yaml loads this checkout's code
location under the name ``changelake`` (as ``[tool.dagster]`` in pyproject.toml says).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipelines.config import REPO_ROOT, Settings

TEMPLATE = Path(__file__).parent / "defs" / "dagster.yaml"
CODE_MODULE = "pipelines.definitions"
CODE_LOCATION = "changelake"


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``<CHANGELAKE_HOME>/dagster`` with the instance config; return its absolute path."""
    home = (settings.home / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return home


def write_workspace(home: Path) -> Path:
    """``<home>/workspace.yaml``: the one code location, named ``changelake``."""
    location = {
        "module_name": CODE_MODULE,
        "location_name": CODE_LOCATION,
        "working_directory": str(REPO_ROOT),
    }
    path = home / "workspace.yaml"
    # JSON is YAML: no YAML writer needed for one fixed structure
    path.write_text(json.dumps({"load_from": [{"python_module": location}]}, indent=2))
    return path
