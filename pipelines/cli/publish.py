"""``changelake publish``: bring the lake's Iceberg tables up to date (bronze and silver).

Thin: calls ``pipelines.iceberg.publish.publish_lake``, the function the tests call.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli.args import parquet_lake_only, table_arg
from pipelines.cli.errors import UserError
from pipelines.config import get_settings

console = Console(stderr=True)


def publish_command(
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table (default: all)")] = None,
) -> None:
    """Publish bronze batches and silver snapshots to the lake's Iceberg catalog, exactly once
    (Spark, Trino, DuckDB and other Iceberg readers then read them; docs/iceberg.md)."""
    from pipelines.iceberg.publish import publish_lake

    settings = get_settings()
    parquet_lake_only(
        settings, "publish", "nothing to publish: the lander and compaction commit to Iceberg"
    )
    names = [table_arg(settings, t) for t in tables] if tables else None
    with console.status("publishing to Iceberg...") as status:
        report = publish_lake(
            settings, tables=names, progress=lambda m: status.update(f"publishing: {m}")
        )
    if not report.tables:
        raise UserError(
            f"nothing to publish: the lake {settings.lake_root} has no bronze or silver table",
            "land and compact first: `changelake land && changelake compact`",
        )
    out = Table(
        title=f"published {report.rows:,} rows in {report.snapshots} Iceberg snapshot(s), "
        f"{report.bytes_written / 1e6:.1f} MB, in {report.seconds:.1f}s"
    )
    numbers = ("rows", "snapshots", "MB", "expired")
    for col in ("layer", "table", *numbers, "rewrote", "reached"):
        out.add_column(col, justify="right" if col in numbers else "left")
    for t in report.tables:
        reached = ", ".join(f"{k}={v}" for k, v in sorted(t.detail.items()))
        out.add_row(
            t.layer,
            t.table,
            f"{t.rows:,}",
            str(len(t.snapshots)),
            f"{t.bytes_written / 1e6:.2f}",
            str(t.expired),
            t.rewritten(),
            reached,
        )
    console.print(out)
    for t in report.tables:
        for change in t.changes:
            console.print(f"[yellow]schema:[/] {t.layer}.{t.table}: {change}")
    console.print(f"catalog {settings.iceberg_catalog_name}: {settings.iceberg_warehouse_location}")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_command)
