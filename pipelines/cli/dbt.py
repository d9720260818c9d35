"""``changelake dbt ARGS...``: dbt on this checkout's project, warehouse and lake.

A pass-through: every argument goes to ``dbt`` unchanged (``changelake dbt build``,
``changelake dbt test --select marts``, ``changelake dbt --help``) and dbt's exit status is
the command's. It runs the ``dbt`` beside this Python (no activated virtualenv needed) with the
project and profiles folder ``dbt_project/`` and the warehouse and lake paths of the current
settings (``pipelines.dbtenv``, the same environment Dagster and the demo give dbt), so it
works from any directory. ``--project-dir``/``--profiles-dir`` on the command line still win.

One word is changelake's own: ``changelake dbt scaffold [--project-dir DIR] [--force]`` writes
dbt sources, staging and SCD2 models for the captured tables (``pipelines.dbtscaffold``).
dbt has no ``scaffold`` command, so the pass-through loses nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.config import get_settings
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_env, dbt_executable

SCAFFOLD = "scaffold"


def dbt_command(ctx: typer.Context) -> None:
    """Run dbt on dbt_project/ with this lake and warehouse (all arguments go to dbt);
    `changelake dbt scaffold --help`: models for the captured tables."""
    if ctx.args[:1] == [SCAFFOLD]:
        command = typer.main.get_command(_scaffold_app)
        command.main(
            ctx.args[1:], prog_name=f"{ctx.command_path} {SCAFFOLD}", standalone_mode=False
        )
        return
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


_scaffold_app = typer.Typer(add_completion=False)


@_scaffold_app.command()
def scaffold_command(
    project_dir: Annotated[
        Path, typer.Option("--project-dir", help="the dbt project to write into")
    ] = DBT_PROJECT_DIR,
    force: Annotated[
        bool, typer.Option("--force", help="overwrite scaffold files you edited")
    ] = False,
) -> None:
    """Write dbt sources, staging models and SCD2 models for every captured table that no
    source of the project reads yet, into models/changelake_scaffold/<schema>/."""
    from pipelines.dbtscaffold import scaffold

    report = scaffold(get_settings(), project_dir, force=force)
    base = Path(project_dir).resolve()
    for f in report.files:
        typer.echo(f"{f.status:>10}  {f.path.relative_to(base)}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    if report.hand_written:
        left = ", ".join(str(t) for t in report.hand_written)
        typer.echo(f"left alone (a hand-written dbt source reads them): {left}")
    if not report.tables:
        why = "see the notes" if report.notes else "every captured table has a dbt source"
        typer.echo(f"nothing to scaffold: {why}")
        return
    typer.echo(
        f"{len(report.tables)} table(s) scaffolded; build them with "
        "`changelake dbt build --select changelake_scaffold`"
    )


def register(app: typer.Typer) -> None:
    app.command(
        "dbt",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,  # --help goes to dbt
    )(dbt_command)
