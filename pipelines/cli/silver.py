"""``changelake compact | as-of | history | retain``: silver snapshots and time travel.

Thin: each command calls the ``pipelines.silver`` function the Dagster assets and tests call.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from pipelines.config import get_settings
from pipelines.naming import QualifiedName

console = Console(stderr=True)


def _show(table: pa.Table, fmt: str, output: Path | None) -> None:
    if fmt == "parquet":
        if output is None:
            raise typer.BadParameter("--format parquet needs --output FILE")
        pq.write_table(table, output)
        console.print(f"wrote {table.num_rows:,} rows to {output}")
        return
    if fmt == "csv":
        fh = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115
        try:
            w = csv.writer(fh)
            w.writerow(table.column_names)
            w.writerows(zip(*(c.to_pylist() for c in table.columns), strict=True))
        finally:
            if output:
                fh.close()
        return
    out = Table(title=f"{table.num_rows:,} rows")
    for name in table.column_names:
        out.add_column(name)
    for row in table.to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    Console(file=open(output, "w") if output else None).print(out)  # noqa: SIM115


def compact_command(
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table (default: all)")] = None,
    full: Annotated[bool, typer.Option("--full", help="rebuild from all of bronze")] = False,
) -> None:
    """Compact bronze into new silver snapshots (incremental unless --full)."""
    from pipelines.silver import compact, compact_all, write_catalog

    settings = get_settings()
    if tables:
        results = [
            compact(settings, QualifiedName.parse(t), full=full, catalog=False) for t in tables
        ]
        write_catalog(settings)
    else:
        results = compact_all(settings, full=full)
    from pipelines.defs.runless import report_compaction  # the UI sees this compact too

    report_compaction(settings, results)
    out = Table(title="silver compaction")
    for col in ("table", "snapshot", "rows", "events", "files", "watermark", "seconds"):
        out.add_column(col)
    for r in results:
        out.add_row(
            r.table,
            (r.snapshot_id or "-") + ("" if r.changed else " (unchanged)"),
            f"{r.rows:,}",
            f"{r.events_applied:,}",
            str(r.files_read),
            r.watermark_ts.isoformat() if r.watermark_ts else "-",
            f"{r.duration_s:.2f}",
        )
    console.print(out)


def as_of_command(
    table: Annotated[str, typer.Argument(help="schema.table")],
    instant: Annotated[str, typer.Argument(help="ISO instant, e.g. 2026-01-01T12:00:00+00:00")],
    where: Annotated[str | None, typer.Option("--where", help="SQL filter on the rows")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table|csv|parquet")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="write to FILE")] = None,
) -> None:
    """The table exactly as committed at INSTANT (whole transactions only)."""
    from pipelines.silver import as_of

    if fmt not in ("table", "csv", "parquet"):
        raise typer.BadParameter("--format must be table, csv or parquet")
    try:
        ts = datetime.fromisoformat(instant)
    except ValueError as exc:
        raise typer.BadParameter(f"INSTANT is not an ISO timestamp: {instant!r}") from exc
    _show(as_of(get_settings(), QualifiedName.parse(table), ts, where=where), fmt, output)


def history_command(
    table: Annotated[str, typer.Argument(help="schema.table")],
    key: Annotated[list[str], typer.Argument(help="primary-key value(s), in key order")],
    fmt: Annotated[str, typer.Option("--format", help="table|csv|parquet")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="write to FILE")] = None,
) -> None:
    """Every version of one row: op, commit time, transaction id (the audit log)."""
    from pipelines.silver import history

    _show(history(get_settings(), QualifiedName.parse(table), key), fmt, output)


def retain_command(
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table (default: all)")] = None,
    keep: Annotated[int | None, typer.Option("--keep", help="newest snapshots to keep")] = None,
    newer_than: Annotated[
        str | None, typer.Option("--keep-newer-than", help="also keep those created after")
    ] = None,
    every: Annotated[
        int | None,
        typer.Option("--keep-every-minutes", help="also keep one per N minutes of history"),
    ] = None,
) -> None:
    """Delete old silver snapshots (never current, never the newest --keep)."""
    from pipelines.silver import retain, write_catalog

    settings = get_settings()
    since = datetime.fromisoformat(newer_than) if newer_than else None
    spacing = timedelta(minutes=every) if every is not None else None
    targets = [QualifiedName.parse(t) for t in tables] if tables else [None]
    for t in targets:
        kept = retain(settings, t, keep_last=keep, keep_newer_than=since, keep_every=spacing)
        for name, ids in kept.items():
            console.print(f"{name}: removed {len(ids)} snapshot(s)")
    write_catalog(settings)


def register(app: typer.Typer) -> None:
    app.command("compact")(compact_command)
    app.command("as-of")(as_of_command)
    app.command("history")(history_command)
    app.command("retain")(retain_command)
