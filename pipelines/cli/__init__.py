"""The ``changelake`` command line: one typer app assembled from one module per stage.

Each stage module (``stack``, ``lake``, ``shop``...) defines ``register(app)``; the commands
call the same plain functions that the Dagster assets and the tests call. Every command runs
inside ``errors.Group``: a failure is one clear line on stderr and an exit status (2 bad usage,
1 runtime failure), the traceback only with ``--debug`` or ``CHANGELAKE_DEBUG=1``.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from pipelines.cli.errors import Group

app = typer.Typer(
    name="changelake",
    cls=Group,
    help="PostgreSQL -> Debezium -> Kafka -> Parquet lake -> dbt-duckdb, with time travel.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="show the full traceback of a failure (or CHANGELAKE_DEBUG=1)"
        ),
    ] = False,
) -> None:
    # read back by errors.Group from the root context's params
    pass


# Stage modules, in data-path order. Each exposes register(app: typer.Typer) -> None.
_STAGES = ("check", "stack", "snapshot", "lake", "silver", "publish", "run", "dbt", "shop", "ui")

for _name in _STAGES:
    try:
        _module = importlib.import_module(f"pipelines.cli.{_name}")
    except ModuleNotFoundError as exc:  # a stage not written yet must not break the others
        if exc.name != f"pipelines.cli.{_name}":
            raise
        continue
    _module.register(app)
