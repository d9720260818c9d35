"""``changelake ui``: the Dagster UI on the shared instance (what `make ui` runs)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.config import get_settings
from pipelines.instance import prepare_dagster_home


def ui(
    port: Annotated[int, typer.Option(help="UI port (binds to CHANGELAKE_BIND_HOST)")] = 3000,
) -> None:
    """Open the Dagster UI (asset graph, runs, checks) for this checkout's pipeline."""
    settings = get_settings()
    home = prepare_dagster_home(settings)
    exe = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    args = [exe, "dev", "-m", "pipelines.definitions", "-h", settings.bind_host, "-p", str(port)]
    typer.echo(f"DAGSTER_HOME={home}; open http://{settings.bind_host}:{port}")
    os.execvpe(exe, args, {**os.environ, "DAGSTER_HOME": str(home)})


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
