"""The ``changelake`` command line: one typer app assembled from one module per stage.

Each stage module (``stack``, ``lake``, ``shop``...) defines ``register(app)``; the commands
call the same plain functions that the Dagster assets and the tests call.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="changelake",
    help="PostgreSQL -> Debezium -> Kafka -> Parquet lake -> dbt-duckdb, with time travel.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Stage modules, in data-path order. Each exposes register(app: typer.Typer) -> None.
_STAGES = ("check", "stack", "lake", "silver", "shop", "ui")

for _name in _STAGES:
    try:
        _module = importlib.import_module(f"pipelines.cli.{_name}")
    except ModuleNotFoundError as exc:  # a stage not written yet must not break the others
        if exc.name != f"pipelines.cli.{_name}":
            raise
        continue
    _module.register(app)
