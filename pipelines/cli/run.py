"""``changelake run``: the always-on service (land, compact, catalog, maintenance, metrics)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

from pipelines.cli.args import table_arg
from pipelines.cli.errors import UserError
from pipelines.cli.services import require
from pipelines.config import get_settings

console = Console(stderr=True)


def run_command(
    table: Annotated[
        list[str] | None, typer.Option("--table", help="schema.table (repeatable)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Prometheus endpoint port (default CHANGELAKE_RUN_METRICS_PORT; 0: any)"),
    ] = None,
    no_metrics: Annotated[bool, typer.Option("--no-metrics", help="no endpoint")] = False,
    no_dagster: Annotated[
        bool, typer.Option("--no-dagster", help="do not record runless events in Dagster")
    ] = False,
    json_summary: Annotated[
        bool, typer.Option("--json", help="print the final summary as JSON on stdout")
    ] = False,
) -> None:
    """Land, compact and refresh the catalog continuously until SIGTERM or Ctrl-C.

    Compaction follows landings; the catalog's views show bronze as soon as it lands; a
    Prometheus endpoint (127.0.0.1) and `changelake status` show the figures. One run per lake.
    """
    from pipelines.bronze.assignment import Member
    from pipelines.bronze.progress import stop_on_signals
    from pipelines.service import RunOptions, run_service

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    tables = [table_arg(settings, t, landed_ok=False) for t in table] if table else None
    Member.parse(settings.lander_member)  # a bad setting: one line, not a stage retried forever
    try:  # a service rides through outages: say so once, then the land stage retries
        require(settings, "kafka")
    except UserError as down:
        console.print(f"[yellow]warning:[/] {down.message}; landing retries with backoff")
    opts = RunOptions(
        tables=tables,
        metrics_host=settings.bind_host,
        metrics_port=None
        if no_metrics
        else (settings.run_metrics_port if metrics_port is None else metrics_port),
        compact_min_interval_s=settings.run_compact_min_interval_s,
        maintenance_every_s=settings.run_maintenance_every_s,
        report_every_s=settings.run_report_every_s,
        report_dagster=not no_dagster,
        publish_every_s=settings.run_publish_every_s,
    )

    def started(port: int | None) -> None:
        where = f"metrics on http://{settings.bind_host}:{port}/metrics" if port else "no metrics"
        console.print(f"changelake run: serving {settings.lake_root}; {where}; SIGTERM stops")

    with stop_on_signals() as stop:
        summary = run_service(settings, opts, stop=stop, on_start=started)
    summary.stopped_by = stop.signal_name
    console.print(summary.line())
    if summary.unfinished:
        console.print(f"[yellow]warning:[/] stages still busy at exit: {summary.unfinished}")
    if json_summary:
        print(json.dumps(summary.__dict__, default=str))


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
