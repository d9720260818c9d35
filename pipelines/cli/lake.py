"""``changelake land`` (and, from the silver stage, ``compact``/``as-of``/``history``).

Commands stay thin: they call the same functions the Dagster assets and tests call.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli.args import table_arg
from pipelines.cli.services import require
from pipelines.config import get_settings

console = Console(stderr=True)


def land_command(
    follow: Annotated[bool, typer.Option("--follow", help="keep landing new events")] = False,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", help="stop after N seconds")
    ] = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", help="schema.table (repeatable)")
    ] = None,
) -> None:
    """Land CDC events from Kafka into bronze Parquet, exactly once."""
    from pipelines.bronze.lander import land

    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    tables = [table_arg(settings, t, landed_ok=False) for t in table] if table else None
    require(settings, "kafka")
    with console.status("landing...") as status:
        result = land(
            settings,
            tables=tables,
            max_seconds=max_seconds,
            until_caught_up=not follow,
            progress=lambda msg: status.update(f"landing: {msg}"),
        )
    from pipelines.defs.runless import report_landing  # the UI sees this land too

    report_landing(get_settings(), result, tables)
    summary = Table(title=f"landed {result.events:,} events in {result.seconds:.1f}s")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    for name, n in sorted(result.per_table.items()):
        summary.add_row(name, f"{n:,}")
    console.print(summary)
    rate = result.messages / result.seconds if result.seconds else 0.0
    console.print(
        f"files {result.files}, quarantined {result.quarantined}, tombstones "
        f"{result.tombstones}, {rate:,.0f} msg/s, lag {sum(result.lag.values()):,}"
    )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if result.quarantined:
        console.print(f"[red]{result.quarantined} message(s) quarantined[/] (see lake/quarantine)")


def register(app: typer.Typer) -> None:
    """Add the lake commands to the ``changelake`` app."""
    app.command("land")(land_command)
