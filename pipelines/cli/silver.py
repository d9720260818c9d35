"""``changelake compact | as-of | history | retain``: silver snapshots and time travel.

Thin: each command calls the ``pipelines.silver`` function the Dagster assets and tests call.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli import output
from pipelines.cli.args import columns_arg, instant_arg, key_values, table_arg
from pipelines.cli.errors import UserError, user_input
from pipelines.config import Settings, get_settings
from pipelines.naming import QualifiedName

console = Console(stderr=True)

FormatOpt = Annotated[str, typer.Option("--format", help="table|csv|parquet")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", help="write to FILE (the table format: values whole)")
]
ColumnsOpt = Annotated[
    str | None, typer.Option("--columns", help="only these columns, comma-separated")
]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit", min=0, help=f"at most N rows (0: all; table on screen: {output.SCREEN_ROWS})"
    ),
]


def _history_start(settings: Settings, table: QualifiedName) -> datetime | None:
    """Commit time of the first event of ``table`` the lake holds (None: nothing landed)."""
    from pipelines.silver import bronze_io
    from pipelines.silver.engine import connect

    paths = bronze_io.table_files(settings.lake_root, table)
    if not paths:
        return None
    con = connect()
    try:
        sql = f"SELECT min(_source_ts) FROM {bronze_io.parquet_source(paths)}"  # noqa: S608
        return con.sql(sql).fetchone()[0]
    finally:
        con.close()


_LAND_HINT = "land them first: `changelake land` (the stack must be up: `changelake up`)"


def compact_command(
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table (default: all)")] = None,
    full: Annotated[bool, typer.Option("--full", help="rebuild from all of bronze")] = False,
) -> None:
    """Compact bronze into new silver snapshots (incremental unless --full)."""
    from pipelines.bronze import files
    from pipelines.silver import compact, compact_all, write_catalog

    settings = get_settings()
    if settings.lake_format == "iceberg":
        _compact_iceberg(settings, [table_arg(settings, t) for t in tables or ()], full)
        return
    if tables:
        names = [table_arg(settings, t) for t in tables]
        for qn in names:
            if not files(settings.lake_root, qn):
                raise UserError(f"nothing to compact: no event of {qn} has landed", _LAND_HINT)
        results = [compact(settings, qn, full=full, catalog=False) for qn in names]
        write_catalog(settings)
    else:
        results = compact_all(settings, full=full)
        if not results:
            raise UserError(
                f"nothing to compact: no captured table has landed events in {settings.lake_root}",
                _LAND_HINT,
            )
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


def _compact_iceberg(settings, names: list, full: bool) -> None:  # noqa: ANN001
    """``compact`` for CHANGELAKE_LAKE_FORMAT=iceberg: Iceberg bronze -> Iceberg silver."""
    from pipelines.iceberg import compaction
    from pipelines.iceberg.duckdb_catalog import write_iceberg_catalog

    if full:
        raise UserError(
            "--full is for the Parquet lake: an Iceberg compaction always starts from the "
            "newest silver snapshot",
            "run `changelake compact` without --full",
        )
    for qn in names:
        if not compaction.has_bronze(settings, qn):
            raise UserError(f"nothing to compact: no event of {qn} has landed", _LAND_HINT)
    have = names or [qn for qn in settings.captured if compaction.has_bronze(settings, qn)]
    if not have:
        raise UserError("nothing to compact: no captured table has landed events", _LAND_HINT)
    results = [compaction.compact(settings, qn) for qn in have]
    if any(r.changed for r in results):
        write_iceberg_catalog(settings)
    out = Table(title="silver compaction (Iceberg)")
    for col in ("table", "snapshot", "rows", "events", "rewrote", "watermark", "seconds"):
        out.add_column(col)
    for r in results:
        out.add_row(
            r.table,
            r.snapshot_id or "- (unchanged)",
            f"{r.rows:,}",
            f"{r.events_applied:,}",
            r.published.rewritten() if r.published else "",
            r.watermark_ts or "-",
            f"{r.seconds:.2f}",
        )
    console.print(out)


def as_of_command(
    table: Annotated[str, typer.Argument(help="schema.table")],
    instant: Annotated[
        str, typer.Argument(help="ISO instant, e.g. 2026-01-01T12:00:00+00:00 (no zone: UTC)")
    ],
    where: Annotated[str | None, typer.Option("--where", help="SQL filter on the rows")] = None,
    columns: ColumnsOpt = None,
    limit: LimitOpt = None,
    fmt: FormatOpt = "table",
    out: OutputOpt = None,
    iceberg: Annotated[
        bool,
        typer.Option(
            "--iceberg",
            help="read the Iceberg tables (published, or the lake itself with CHANGELAKE_LAKE_FORMAT=iceberg)",
        ),
    ] = False,
) -> None:
    """The table exactly as committed at INSTANT (whole transactions only)."""
    from pipelines.silver import SnapshotInProgress, as_of

    settings = get_settings()
    if iceberg or settings.lake_format == "iceberg":
        from pipelines.iceberg.timetravel import as_of  # same rule, Iceberg's tables

    output.check_format(fmt, out)
    qn, (ts, zone_note) = table_arg(settings, table), instant_arg(instant)
    with (
        user_input("--where", 'a DuckDB SQL condition on the columns, e.g. --where "id = 42"'),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", SnapshotInProgress)
        rows = as_of(settings, qn, ts, where=where)
    partial = next((str(w.message) for w in caught if w.category is SnapshotInProgress), None)
    for w in caught:
        if w.category is not SnapshotInProgress:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    rows = output.select(rows, columns_arg(columns, rows.column_names))
    early = None
    if rows.num_rows == 0 and (start := _history_start(settings, qn)) and ts < start:
        early = (
            f"note: the lake's history of {qn} starts at {start.isoformat()}; "
            f"{ts.isoformat()} is before it"
        )
    if early is None or fmt != "table" or out is not None:  # on screen: the note, no empty table
        title = f"{qn} as of {ts.isoformat()}: {rows.num_rows:,} rows"
        output.show(rows, fmt, out, title=title, limit=limit)
    for note in (zone_note, early, partial and f"note: {partial}"):
        if note:
            typer.echo(note, err=True)


def history_command(
    table: Annotated[str, typer.Argument(help="schema.table")],
    key: Annotated[list[str], typer.Argument(help="primary-key value(s), in key order")],
    columns: ColumnsOpt = None,
    limit: LimitOpt = None,
    fmt: FormatOpt = "table",
    out: OutputOpt = None,
) -> None:
    """Every version of one row: op, commit time, transaction id (the audit log). The table
    format shows one line per version with the columns that changed in it."""
    from pipelines.lakeformat import history

    settings = get_settings()
    output.check_format(fmt, out)
    qn = table_arg(settings, table)
    values = key_values(settings, qn, key)
    versions = history(settings, qn, values)
    source = [c for c in versions.column_names if c not in output.HISTORY_META]
    versions = output.select(versions, columns_arg(columns, source), keep=output.HISTORY_META)
    label = ", ".join(map(str, values))
    if versions.num_rows == 0:
        typer.echo(f"note: no version of a {qn} row with key ({label}) has landed", err=True)
    title = f"{qn} ({label}): {versions.num_rows:,} versions"
    shown = output.history_view(versions) if fmt == "table" else versions
    output.show(shown, fmt, out, title=title, limit=limit)


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
    orphan_hours: Annotated[
        float | None,
        typer.Option(
            "--orphans-older-than-hours",
            help="Iceberg: delete unreferenced files this old (default: the setting, 24)",
            min=0.0,
        ),
    ] = None,
) -> None:
    """Delete old silver snapshots (never current, never the newest --keep); on the Iceberg
    lake, expire its silver snapshots by the same rule and delete the files no table metadata
    references (commits killed mid-way) once they are old enough."""
    from pipelines.lakeformat import maintain

    settings = get_settings()
    since, zone_note = instant_arg(newer_than, "--keep-newer-than") if newer_than else (None, None)
    spacing = timedelta(minutes=every) if every is not None else None
    done = maintain(
        settings,
        [table_arg(settings, t) for t in tables] if tables else None,
        orphans_older_than=timedelta(hours=orphan_hours) if orphan_hours is not None else None,
        keep_last=keep,
        keep_newer_than=since,
        keep_every=spacing,
    )
    for name, ids in done.removed.items():
        console.print(f"{name}: removed {len(ids)} snapshot(s)")
    for report in done.orphans:
        if report.deleted or report.too_young:
            console.print(
                f"{report.table}: deleted {report.deleted} orphan file(s) ({report.bytes:,} bytes)"
                + (f", {report.too_young} newer ones kept" if report.too_young else "")
            )
    if zone_note:
        typer.echo(zone_note, err=True)


def register(app: typer.Typer) -> None:
    app.command("compact")(compact_command)
    app.command("as-of")(as_of_command)
    app.command("history")(history_command)
    app.command("retain")(retain_command)
