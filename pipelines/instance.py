"""The Dagster instance folder (DAGSTER_HOME) that `make demo` and `make ui` share.

Runs launched by the demo and the UI land in one instance, so the UI shows the demo's
materialisations; its dagster.yaml (from the template next to this file) limits the warehouse
and landing pools to one writer at a time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.config import Settings

TEMPLATE = Path(__file__).parent / "defs" / "dagster.yaml"


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``<CHANGELAKE_HOME>/dagster`` with the instance config; return its absolute path."""
    home = (settings.home / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return home
