"""``changelake ui``: the Dagster UI and daemon on the shared instance (what `make ui` runs).

``dagster dev`` runs as a child in a process group of its own (webserver, daemon and code server
all inherit it). SIGTERM or SIGINT (Ctrl-C) to ``changelake ui`` is passed on to
``dagster dev``, which shuts its services down; whatever is still alive in the group after
``STOP_GRACE_S`` is killed, so stopping the UI never leaves a process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from pipelines.config import get_settings
from pipelines.instance import prepare_dagster_home, write_workspace

STOP_GRACE_S = 30.0  # dagster dev itself waits up to 60 s per service; we do not


def ui(
    port: Annotated[int, typer.Option(help="UI port (binds to CHANGELAKE_BIND_HOST)")] = 3000,
) -> None:
    """Open the Dagster UI (asset graph, runs, checks) and run its daemon.

    The daemon runs the sensors: kafka_new_events lands new CDC events,
    declarative automation rebuilds silver and the dbt models after them,
    and the nightly maintenance schedule. Nothing lands by itself unless
    this (or `changelake land`) runs. Ctrl-C or SIGTERM stops all of it.
    """
    settings = get_settings()
    home = prepare_dagster_home(settings)
    exe = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    workspace = write_workspace(home)
    args = [exe, "dev", "-w", str(workspace), "-h", settings.bind_host, "-p", str(port)]
    typer.echo(f"DAGSTER_HOME={home}; open http://{settings.bind_host}:{port}")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(args, env=env, process_group=0)
    stopping: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # dagster dev: SIGTERM = orderly shutdown

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        code = _wait(proc, stopping)
    finally:
        _end_group(proc)
    raise typer.Exit(0 if stopping else code)


def _wait(proc: subprocess.Popen, stopping: list[int]) -> int:
    """Wait for ``dagster dev``; once asked to stop, at most ``STOP_GRACE_S`` more."""
    while True:
        try:
            return proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        if stopping and proc.poll() is None:
            try:
                return proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                return -1  # _end_group kills it


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, whatever is left in the process group led by ``proc``."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or the group never looks empty
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
