"""``changelake up/down/status/logs``: thin typer wrappers over ``pipelines.stack``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines import stack
from pipelines.cli.errors import UserError
from pipelines.cli.services import SERVICES, require
from pipelines.config import get_settings
from pipelines.stack.layout import Layout

console = Console()

_LOGS = {
    "postgres": "postgres.log",
    "kafka": "kafka.log",
    "connect": "connect.log",
    "maven": "maven.log",
    "kafka-stdout": "kafka.stdout",
    "connect-stdout": "connect.stdout",
}


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def up_cmd(
    runtime: str = typer.Option(
        None, "--runtime", help="native or docker (default: CHANGELAKE_RUNTIME, native)"
    ),
    timeout: float = typer.Option(180, help="seconds to wait for everything to be healthy"),
) -> None:
    """Start PostgreSQL, Kafka (KRaft) and Kafka Connect + Debezium, and register the connector."""
    settings = get_settings()
    runtime = runtime or settings.runtime
    started = time.monotonic()
    try:
        if runtime == "docker":
            from pipelines.stack.docker import up_docker

            up_docker(settings, timeout=timeout, progress=console.log)
        elif runtime == "native":
            with console.status("starting the stack...") as spinner:

                def progress(msg: str) -> None:
                    console.log(msg)
                    spinner.update(msg)

                stack.up(settings, timeout=timeout, progress=progress)
        else:
            raise stack.StackError(f"unknown runtime {runtime!r}: use native or docker")
    except stack.StackError as exc:
        _fail(exc)
    console.print(f"[green]stack up[/] in {time.monotonic() - started:.1f}s (home {settings.home})")


def down_cmd(
    purge: bool = typer.Option(
        False, "--purge", help="then delete all the home holds but the jar cache: a fresh start"
    ),
    keep_lake: bool = typer.Option(
        False, "--keep-lake", help="with --purge: keep the lake and the warehouse"
    ),
) -> None:
    """Stop the processes `up` started (state is kept unless --purge; on an external database
    --purge also drops the slot and publication changelake created there)."""
    if keep_lake and not purge:
        console.print("[bold red]error:[/] --keep-lake only makes sense with --purge")
        raise typer.Exit(2)
    settings = get_settings()
    try:
        if settings.runtime == "docker":
            from pipelines.stack.docker import down_docker

            down_docker(settings, purge=purge)
        report = stack.down(settings, purge=purge, keep_lake=keep_lake, progress=console.log)
    except stack.StackError as exc:
        _fail(exc)
    for path in report.removed:
        console.print(f"removed {path}")
    for path, why in report.kept:
        console.print(f"[yellow]kept[/] {path}: {why}")
    console.print("[green]stack down[/]" + (" (state purged)" if purge else ""))


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n else "-"


def status_cmd(
    as_json: bool = typer.Option(False, "--json", help="one JSON document (keys: README)"),
) -> None:
    """The stack (components, connector and tasks, slot lag, topic end offsets) and the lake
    (per table: lag, bronze files and rows, silver watermark and freshness, quarantined)."""
    from pipelines.cli import lakestatus as view
    from pipelines.iceberg.status import publication_status
    from pipelines.lakeformat import lake_status
    from pipelines.service import read_status

    settings = get_settings()
    service = read_status(settings.lake_root)
    # the Iceberg-stored lake is what the lake view shows: there is no copy to be behind
    iceberg = publication_status(settings) if settings.lake_format == "parquet" else None
    try:  # all down: the lake view still shows (it reads only the lake), then one error line
        require(settings, *SERVICES, any_up=True)
    except UserError as down:
        lake = lake_status(settings, None)
        if as_json:
            typer.echo(
                json.dumps(
                    view.document(stack.status(settings), lake, service, iceberg),
                    indent=1,
                    default=str,
                )
            )
        else:
            console.print(view.lake_table(lake))
            console.print(view.service_table(service))
            console.print(view.iceberg_line(iceberg))
        raise down from None
    st = stack.status(settings)
    lake = lake_status(settings, view.kafka_end_offsets(st))
    if as_json:
        typer.echo(json.dumps(view.document(st, lake, service, iceberg), indent=1, default=str))
        raise typer.Exit(0 if st.healthy else 1)
    comps = Table(title="components")
    for col in ("component", "state", "pid", "port", "RSS"):
        comps.add_column(col)
    for c in st.components:
        state = "[green]up[/]" if c.up else "[red]down[/]" + (f" ({c.error})" if c.error else "")
        state += " (external)" if c.external else ""
        comps.add_row(c.name, state, str(c.pid or "-"), str(c.port), _mib(c.rss_bytes))
    console.print(comps)
    cdc = Table(title="change data capture")
    cdc.add_column("what")
    cdc.add_column("value")
    cdc.add_row(f"connector {settings.connector_name}", st.connector_state or "not registered")
    cdc.add_row("tasks", ", ".join(st.task_states) or "-")
    cdc.add_row(
        f"slot {settings.slot_name} lag",
        "-" if st.slot_lag_bytes is None else f"{st.slot_lag_bytes} bytes",
    )
    for slot, held in st.retained_wal.items():
        cdc.add_row(f"slot {slot} retained WAL", f"{held} bytes")
    console.print(cdc)
    topics = Table(title="topics (end offsets)")
    topics.add_column("topic")
    topics.add_column("partition", justify="right")
    topics.add_column("end offset", justify="right")
    for (topic, part), off in sorted(st.end_offsets.items()):
        topics.add_row(topic, str(part), str(off))
    console.print(topics)
    console.print(view.lake_table(lake))
    console.print(view.service_table(service))
    console.print(view.iceberg_line(iceberg))
    for err in (*st.errors, *st.warnings):
        console.print(f"[yellow]{err}[/]")
    for finding in st.capture_findings:
        console.print(f"[bold red]CHANGES NOT CAPTURED: {escape(finding)}[/]", soft_wrap=True)
    console.print("[green]healthy[/]" if st.healthy else "[red]not healthy[/]")
    if not st.healthy:
        raise typer.Exit(1)


def logs_cmd(
    component: str = typer.Argument(..., help=f"one of {', '.join(_LOGS)}"),
    lines: int = typer.Option(50, "-n", "--lines"),
    follow: bool = typer.Option(False, "-f", "--follow"),
) -> None:
    """Show the end of a component's log file (and follow it with -f)."""
    if component not in _LOGS:
        _fail(stack.StackError(f"unknown component {component!r}; choose from {', '.join(_LOGS)}"))
    path = Layout.of(get_settings()).logs / _LOGS[component]
    if not path.exists():
        _fail(stack.StackError(f"no log yet at {path} (has `changelake up` run?)"))
    console.print(f"[dim]{path}[/]")
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(argv, check=False)  # noqa: S603


def register(app: typer.Typer) -> None:
    """Add the stack commands to the ``changelake`` app."""
    app.command("up")(up_cmd)
    app.command("down")(down_cmd)
    app.command("status")(status_cmd)
    app.command("logs")(logs_cmd)
