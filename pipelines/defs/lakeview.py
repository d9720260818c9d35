"""Read-only summaries of lake tables for asset metadata: row count, schema, a small preview.

One short in-memory DuckDB connection per call, reading Parquet directly (never the
warehouse file, which dbt may be writing). Everything is one aggregate query, not a loop
over rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.naming import quote_literal

PREVIEW_ROWS = 5
_CELL_MAX = 40


def _source_sql(paths: Sequence[Path | str]) -> str:
    files = ", ".join(quote_literal(str(p)) for p in paths)
    return f"read_parquet([{files}], union_by_name = true)"


def summarize_parquet(
    paths: Sequence[Path | str], *, order_by: str | None = None
) -> dict[str, object]:
    """Metadata for the union of ``paths``: ``row_count``, ``schema``, ``preview`` (markdown).

    ``order_by`` is a trusted column expression (ours, e.g. ``_offset DESC``) choosing which
    rows the preview shows; source column names are always quoted by DuckDB's DESCRIBE.
    """
    if not paths:
        return {"dagster/row_count": 0}
    src = _source_sql(paths)
    with duckdb.connect(":memory:") as con:
        described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()  # noqa: S608
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]  # noqa: S608
        order = f" ORDER BY {order_by}" if order_by else ""
        cur = con.execute(f"SELECT * FROM {src}{order} LIMIT {PREVIEW_ROWS}")  # noqa: S608
        columns = [d[0] for d in cur.description]
        preview = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), constraints=None)
            for name, dtype, *_ in described
        ]
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": schema,
        "preview": dg.MetadataValue.md(markdown_table(preview, columns)),
    }


def markdown_table(rows: list[dict[str, object]], columns: Sequence[str]) -> str:
    """A few rows as a markdown table; long cells are cut, pipes escaped."""
    if not rows:
        return "_no rows_"

    def cell(v: object) -> str:
        text = "NULL" if v is None else str(v)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"

    head = "| " + " | ".join(cell(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])
