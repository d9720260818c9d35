"""``changelake up/down/status/logs``: thin typer wrappers over ``pipelines.stack``."""

from __future__ import annotations

import contextlib
import subprocess
import time

import typer
from rich.console import Console
from rich.table import Table

from pipelines import stack
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
    runtime: str = typer.Option("native", "--runtime", help="native (default) or docker"),
    timeout: float = typer.Option(180, help="seconds to wait for everything to be healthy"),
) -> None:
    """Start PostgreSQL, Kafka (KRaft) and Kafka Connect + Debezium, and register the connector."""
    settings = get_settings()
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
    purge: bool = typer.Option(False, "--purge", help="also delete data, logs and config"),
) -> None:
    """Stop the processes `up` started (data is kept unless --purge; on an external database
    --purge drops the slot and publication changelake created there)."""
    try:
        stack.down(get_settings(), purge=purge, progress=console.log)
    except stack.StackError as exc:
        _fail(exc)
    console.print("[green]stack down[/]" + (" (state purged)" if purge else ""))


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n else "-"


def status_cmd() -> None:
    """Each component (pid, port, RSS), the connector and tasks, slot lag, topic end offsets."""
    settings = get_settings()
    st = stack.status(settings)
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
    for err in (*st.errors, *st.warnings):
        console.print(f"[yellow]{err}[/]")
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
