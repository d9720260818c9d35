"""``changelake snapshot TABLE... [--where SQL]``: re-read captured tables on demand.

Sends Debezium an incremental ``execute-snapshot`` signal (``pipelines.stack.signal``); the rows
arrive as ``r`` events interleaved with the live stream, and silver orders them against it.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console

from pipelines.config import Settings, get_settings
from pipelines.naming import InvalidName, QualifiedName

console = Console(stderr=True)


def _usage(msg: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(2)


def _fail(msg: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(1)


def _check_snapshottable(settings: Settings, names: list[QualifiedName]) -> None:
    """Each table exists, and has a primary key (Debezium pages an incremental snapshot by it)."""
    from pipelines.stack import StackError, postgres

    pairs = [(t.schema, t.table) for t in names]
    exist = postgres.existing_tables(settings, pairs)
    keyless = postgres.existing_tables(settings, pairs, keyless=True)
    absent = [str(t) for t in names if (t.schema, t.table) not in exist]
    if absent:
        raise StackError(f"no such table in PostgreSQL: {', '.join(absent)}")
    nokey = [str(t) for t in names if (t.schema, t.table) in keyless]
    if nokey:
        raise StackError(f"no primary key, cannot be snapshotted incrementally: {', '.join(nokey)}")


def snapshot_command(
    tables: Annotated[list[str], typer.Argument(help="captured tables, schema.table")],
    where: Annotated[
        str | None,
        typer.Option("--where", help="SQL condition: re-read only the rows it selects"),
    ] = None,
) -> None:
    """Re-snapshot captured tables (incrementally, while changes keep streaming)."""
    from pipelines.stack import StackError
    from pipelines.stack.signal import check_filter, request_snapshot

    settings = get_settings()
    try:
        names = list(dict.fromkeys(QualifiedName.parse(t) for t in tables))
    except InvalidName as exc:
        _usage(str(exc))
    captured = set(settings.captured)
    missing = [str(t) for t in names if t not in captured]
    if missing:
        _usage(f"not captured (not in CHANGELAKE_TABLES): {', '.join(missing)}")
    try:
        _check_snapshottable(settings, names)
        if where is not None:
            check_filter(settings, names, where)
        signal_id = request_snapshot(settings, names, where)
    except StackError as exc:
        _fail(str(exc))
    except psycopg.Error as exc:
        _fail(f"PostgreSQL: {str(exc).strip().splitlines()[0]}")
    console.print(
        f"snapshot requested for {', '.join(map(str, names))}"
        + (f" where {where}" if where else "")
        + f" (signal {signal_id})"
    )


def register(app: typer.Typer) -> None:
    app.command("snapshot")(snapshot_command)
