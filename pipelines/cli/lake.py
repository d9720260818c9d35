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
    """Land CDC events from Kafka into bronze Parquet, exactly once (--follow: until Ctrl-C or
    SIGTERM, with a progress line every few seconds and a summary at the end)."""
    from pipelines.bronze.assignment import Member
    from pipelines.bronze.progress import stamped, stop_on_signals, summary_line
    from pipelines.landing import land

    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    tables = [table_arg(settings, t, landed_ok=False) for t in table] if table else None
    member = Member.parse(settings.lander_member)  # a bad setting: one line, before connecting
    require(settings, "kafka")
    with stop_on_signals() as stop, console.status("landing...") as status:
        result = land(
            settings,
            tables=tables,
            max_seconds=max_seconds,
            until_caught_up=not follow,
            progress=stamped(console.print) if follow else lambda m: status.update(f"landing: {m}"),
            stop=stop,
            member=member,
        )
    from pipelines.defs.runless import report_landing  # the UI sees this land too

    report_landing(settings, result, tables)
    summary = Table(title=f"landed {result.events:,} events in {result.seconds:.1f}s")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    for name, n in sorted(result.per_table.items()):
        summary.add_row(name, f"{n:,}")
    console.print(summary)
    console.print(summary_line(result, stop.signal_name))
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if result.quarantined:
        console.print(f"[red]{result.quarantined} message(s) quarantined[/] (see lake/quarantine)")


def register(app: typer.Typer) -> None:
    """Add the lake commands to the ``changelake`` app."""
    app.command("land")(land_command)
