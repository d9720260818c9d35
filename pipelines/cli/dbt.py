"""``changelake dbt ARGS...``: dbt on this checkout's project, warehouse and lake.

A pass-through: every argument goes to ``dbt`` unchanged (``changelake dbt build``,
``changelake dbt test --select marts``, ``changelake dbt --help``) and dbt's exit status is
the command's. It runs the ``dbt`` beside this Python (no activated virtualenv needed) with the
project and profiles folder ``dbt_project/`` and the warehouse and lake paths of the current
settings (``pipelines.dbtenv``, the same environment Dagster and the demo give dbt), so it
works from any directory. ``--project-dir``/``--profiles-dir`` on the command line still win.
"""

from __future__ import annotations

import os

import typer

from pipelines.config import get_settings
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_env, dbt_executable


def dbt_command(ctx: typer.Context) -> None:
    """Run dbt on dbt_project/ with this lake and warehouse (all arguments go to dbt)."""
    settings = get_settings()
    try:
        exe = dbt_executable()
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **dbt_env(settings),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }
    # exec: dbt owns the terminal, its signals and its exit status, as if run directly.
    os.execve(exe, [exe, *ctx.args], env)


def register(app: typer.Typer) -> None:
    app.command(
        "dbt",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,  # --help goes to dbt
    )(dbt_command)
