"""Query output of ``as-of``/``history``: fits the terminal, cuts long values, writes them whole
to a file, limits rows, and shows one line per version with only what changed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.cli import output
from pipelines.cli.args import columns_arg
from pipelines.cli.errors import BadInput

pytestmark = pytest.mark.unit

LONG = "x" * 500 + "END"


def rows(n: int = 5) -> pa.Table:
    return pa.table(
        {"id": list(range(n)), "note": [LONG] * n, "line": ["one\ntwo"] + [None] * (n - 1)}
    )


def test_screen_table_fits_the_terminal_and_cuts_long_values(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    output.show(rows(), "table", None, title="t: 5 rows", limit=None)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= 60 for line in lines), out
    assert "…" in out and "END" not in out
    assert sum("│" in line for line in lines) == 5  # one line per row, newlines escaped
    assert "one\\ntwo" in out and "null" in out


def test_file_output_keeps_values_whole(tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.txt"
    output.show(rows(), "table", target, title="t", limit=None)
    text = target.read_text()
    assert text.count(LONG) == 5 and "…" not in text and "\x1b[" not in text
    assert "wrote 5 rows" in capsys.readouterr().err


def test_limit_and_the_screen_default(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    output.show(rows(5), "table", None, title="t", limit=2)
    out = capsys.readouterr().out
    assert "first 2 of 5 rows" in out and "│ 1 " in out and "│ 2 " not in out
    output.show(rows(output.SCREEN_ROWS + 5), "table", None, title="t", limit=None)
    assert (
        f"first {output.SCREEN_ROWS} of {output.SCREEN_ROWS + 5:,} rows" in capsys.readouterr().out
    )
    output.show(rows(5), "csv", None, title="t", limit=3)
    assert len(list(csv.reader(io.StringIO(capsys.readouterr().out)))) == 1 + 3


def test_columns_are_checked_and_selected() -> None:
    t = rows(2)
    assert output.select(t, columns_arg("line,id", t.column_names)).column_names == ["line", "id"]
    with pytest.raises(BadInput, match="no column nope"):
        columns_arg("id,nope", t.column_names)
    assert output.select(t, None) is t


def test_changed_mask_treats_null_as_a_value_and_handles_nested_types() -> None:
    assert output.changed_mask(pa.array([1, 1, None, None, 2])) == [True, False, True, False, True]
    nested = pa.array([[1], [1], [1, 2]])
    assert output.changed_mask(nested) == [True, False, True]


def test_history_view_one_line_per_version_with_what_changed() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    versions = pa.table(
        {
            "id": [7, 7, 7, 7, 7],
            "name": ["a", "a", "b", "b", "b"],
            "price": [1, 2, 3, 3, 3],
            "_op": ["c", "u", "u", "u", "d"],
            "_source_ts": [t0 + timedelta(seconds=i) for i in range(5)],
            "_tx_id": [10, 11, 12, 13, 14],
            "_commit_lsn": [1, 2, 3, 4, 5],
            "_lsn": [1, 2, 3, 4, 5],
        }
    )
    view = output.history_view(versions)
    assert view.column_names == ["#", "op", "committed at", "tx", "changed"]
    assert view.column("op").to_pylist() == ["insert", "update", "update", "update", "delete"]
    assert view.column("changed").to_pylist() == [
        "id=7, name=a, price=1",
        "price: 1 → 2",
        "name: a → b, price: 2 → 3",
        "(no change in these columns)",
        "(row deleted)",
    ]
    assert view.column("tx").to_pylist() == ["10", "11", "12", "13", "14"]
