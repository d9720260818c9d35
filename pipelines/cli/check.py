"""``changelake check``: the preflight of PostgreSQL, Kafka and Connect (``pipelines.stack.check``)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.config import get_settings
from pipelines.naming import split_name_list
from pipelines.stack import check
from pipelines.stack.procs import StackError

console = Console(soft_wrap=True)
_STYLE = {"blocking": "bold red", "warning": "yellow", "ok": "green"}


def check_cmd(
    only: str = typer.Option(
        ",".join(check.PARTS), "--only", help="comma-separated parts: postgres, kafka, connect"
    ),
) -> None:
    """Verify wal_level, slots, the CDC role's rights, captured tables, Kafka and Connect; one
    line per finding with its fix. Exit status 1 on any blocking finding."""
    parts = [p.strip() for p in split_name_list(only)] if only.strip() else []
    try:
        findings = check.run(get_settings(), parts)
    except StackError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    for f in findings:
        console.print(f"[{_STYLE[f.severity]}]{escape(f.line())}[/]")
    bad = check.blocking(findings)
    warned = sum(f.severity == "warning" for f in findings)
    if bad:
        console.print(f"[bold red]{len(bad)} blocking, {warned} warning(s)[/]")
        raise typer.Exit(1)
    console.print(f"[green]no blocking findings[/] ({warned} warning(s))")


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)
