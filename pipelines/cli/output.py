"""Query output of ``as-of`` and ``history``: a terminal table, CSV or Parquet.

On screen the table fits the terminal: one line per row, long values cut with an ellipsis, at
most ``SCREEN_ROWS`` rows unless ``--limit`` says otherwise. Written to ``--output FILE`` the
same table keeps every value whole. ``history_view`` turns the versions of a row into one line
per version showing only what changed in it.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.cli.errors import BadInput

FORMATS = ("table", "csv", "parquet")
SCREEN_ROWS = 100  # rows a table shows on screen unless --limit says otherwise
NULL = "null"
OPS = {"c": "insert", "r": "snapshot", "u": "update", "d": "delete", "t": "truncate"}
HISTORY_META = ("_op", "_source_ts", "_tx_id", "_commit_lsn", "_lsn")


def check_format(fmt: str, output: Path | None) -> None:
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "parquet" and output is None:
        raise BadInput("--format parquet needs --output FILE")


def _cell(value: object) -> str:
    return NULL if value is None else str(value)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def _render(table: pa.Table, title: str, caption: str | None, file: Path | None) -> None:
    cells = [[_cell(v) for v in col.to_pylist()] for col in table.columns]
    if file is not None:  # every value whole: as wide as the widest cell of each column
        widths = [
            max([cell_len(n), *(cell_len(_one_line(v)) for v in c)])
            for n, c in zip(table.column_names, cells, strict=True)
        ]
        width = sum(widths) + 3 * len(widths) + 4
        with open(file, "w", encoding="utf-8") as fh:
            _print(Console(file=fh, width=width, color_system=None), table, cells, title, caption)
        return
    _print(Console(), table, cells, title, caption)


def fit_widths(need: list[int], available: int) -> list[int]:
    """Column widths within ``available``: narrow columns keep their width, the wide ones share
    what is left equally (and are cut with an ellipsis)."""
    widths = list(need)
    wide = sorted(range(len(need)), key=lambda i: need[i])
    left = max(available, len(need))
    while wide:
        share = left // len(wide)
        if need[wide[0]] > share:  # every remaining column is wider than its share: cut them
            for i in wide:
                widths[i] = max(share, 1)
            break
        left -= need[wide.pop(0)]
    return widths


def _print(
    console: Console, table: pa.Table, cells: list[list[str]], title: str, caption: str | None
) -> None:
    console.print(Text(title, style="bold"), no_wrap=True, overflow="ellipsis")
    out = Table(caption=caption, caption_justify="left")
    need = [
        max([cell_len(n), *(cell_len(_one_line(v)) for v in c)])
        for n, c in zip(table.column_names, cells, strict=True)
    ]
    widths = fit_widths(need, console.width - 3 * len(need) - 1)  # borders and padding
    for name, width in zip(table.column_names, widths, strict=True):
        out.add_column(name, overflow="ellipsis", no_wrap=True, width=width)
    for row in zip(*cells, strict=True):
        out.add_row(*(Text(_one_line(v), style="dim" if v == NULL else "") for v in row))
    console.print(out)


def show(
    table: pa.Table,
    fmt: str,
    output: Path | None,
    *,
    title: str,
    limit: int | None,
    note: str | None = None,
) -> None:
    """Print or write ``table``. ``limit``: at most that many rows (0: all); on screen the
    table format shows ``SCREEN_ROWS`` unless told."""
    total = table.num_rows
    if limit is None and fmt == "table" and output is None:
        limit = SCREEN_ROWS
    if limit:
        table = table.slice(0, limit)
    caption = None
    if table.num_rows < total:
        caption = f"first {table.num_rows:,} of {total:,} rows (--limit N for more, 0 for all)"
    if note:
        caption = f"{note}\n{caption}" if caption else note
    if fmt == "parquet":
        pq.write_table(table, output)
        Console(stderr=True).print(f"wrote {table.num_rows:,} rows to {output}")
    elif fmt == "csv":
        _csv(table, output)
    else:
        _render(table, title, caption, output)
        if output is not None:
            Console(stderr=True).print(f"wrote {table.num_rows:,} rows to {output}")


def _csv(table: pa.Table, output: Path | None) -> None:
    fh = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        w = csv.writer(fh)
        w.writerow(table.column_names)
        w.writerows(zip(*(c.to_pylist() for c in table.columns), strict=True))
    finally:
        if output:
            fh.close()


def select(table: pa.Table, columns: list[str] | None, keep: tuple[str, ...] = ()) -> pa.Table:
    """Only ``columns`` (plus the ``keep`` columns present), in that order."""
    if columns is None:
        return table
    return table.select([*columns, *(c for c in keep if c in table.column_names)])


def changed_mask(column: pa.ChunkedArray | pa.Array) -> list[bool]:
    """Per version: does this column differ from the version before (NULL = NULL)?"""
    n = len(column)
    if n < 2:
        return [True] * n
    cur, prev = column.slice(1), column.slice(0, n - 1)
    try:
        same = pc.or_(
            pc.fill_null(pc.equal(cur, prev), False),
            pc.and_(pc.is_null(cur), pc.is_null(prev)),
        )
        rest = pc.invert(same).to_pylist()
    except pa.ArrowNotImplementedError:  # nested types: compare as Python values
        vals = column.to_pylist()
        rest = [a != b for a, b in zip(vals[1:], vals[:-1], strict=True)]
    return [True, *rest]


def history_view(versions: pa.Table) -> pa.Table:
    """One row per version: number, operation, commit time, transaction and what changed.

    An insert or snapshot read lists every column; an update only the columns whose value
    differs from the version before, as ``column: old → new``."""
    cols = [c for c in versions.column_names if c not in HISTORY_META]
    n = versions.num_rows
    ops = versions.column("_op").to_pylist()
    masks = {c: changed_mask(versions.column(c)) for c in cols}
    values = {c: versions.column(c).to_pylist() for c in cols}
    changes = []
    for i, op in enumerate(ops):
        if op == "d":
            changes.append("(row deleted)")
        elif op == "t":
            changes.append("(table truncated)")
        elif op in ("c", "r") or i == 0:
            changes.append(", ".join(f"{c}={_cell(values[c][i])}" for c in cols))
        else:
            diff = [
                f"{c}: {_cell(values[c][i - 1])} → {_cell(values[c][i])}"
                for c in cols
                if masks[c][i]
            ]
            changes.append(", ".join(diff) or "(no change in these columns)")
    return pa.table(
        {
            "#": list(range(1, n + 1)),
            "op": [OPS.get(op, op) for op in ops],
            "committed at": [_cell(v) for v in versions.column("_source_ts").to_pylist()],
            "tx": [_cell(v) for v in versions.column("_tx_id").to_pylist()],
            "changed": changes,
        }
    )
