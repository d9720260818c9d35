"""Bronze writer, recovery and readers over Arrow tables shaped per docs/design.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.bronze import files, key_columns, landed_offsets, scan
from pipelines.bronze.layout import BatchId, list_lake, parse_file
from pipelines.bronze.writer import recover, write_batch
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

T = QualifiedName("shop", 'we"ird.name')
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


def rows(offsets: range, days: list[int] | None = None, extra: dict | None = None) -> pa.Table:
    """Bronze rows for offsets, commit day per row (May 2024), with key metadata."""
    days = days or [1] * len(offsets)
    cols = {
        "id": pa.array(list(offsets), pa.int32()),
        "_op": pa.array(["c"] * len(offsets)),
        "_source_ts": pa.array(
            [datetime(2024, 5, d, 23, 59, tzinfo=UTC) for d in days], pa.timestamp("us", "UTC")
        ),
        "_topic": pa.array(["changelake.shop.x"] * len(offsets)),
        "_partition": pa.array([0] * len(offsets), pa.int32()),
        "_offset": pa.array(list(offsets), pa.int64()),
    }
    cols.update(extra or {})
    t = pa.table(cols)
    return t.replace_schema_metadata({b"changelake.key": json.dumps(["id"]).encode()})


def quarantine(offset: int) -> pa.Table:
    return pa.table(
        {
            "topic": ["changelake.shop.x"],
            "partition": pa.array([0], pa.int32()),
            "offset": pa.array([offset], pa.int64()),
            "value": pa.array([b"\xff{not json"], pa.binary()),
            "error": ["bad json"],
        }
    )


def test_batch_layout_dates_quarantine_and_readers(tmp_path: Path) -> None:
    b = BatchId("changelake.shop.x", 0, 0, 4)
    out = write_batch(tmp_path, b, {T: rows(range(4), [1, 1, 2, 2])}, None, quarantine(4), NOW)
    assert len(out.paths) == 3  # two commit dates + quarantine
    names = sorted(p.name for p in out.paths)
    assert names[0].startswith(
        "changelake%2Eshop%2Ex-p0-o00000000000000000000-00000000000000000004."
    )
    assert {p.name.split(".")[-2] for p in out.paths} == {"1of3", "2of3", "3of3"}
    assert {p.parent.name for p in out.paths} >= {
        "_commit_date=2024-05-01",
        "_commit_date=2024-05-02",
    }
    assert out.paths[0].parent.parent == tmp_path / "bronze" / T.path
    meta = pq.read_schema(out.paths[0]).metadata
    assert meta[b"changelake.table"] == str(T).encode()
    assert pq.ParquetFile(out.paths[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert key_columns(tmp_path, T) == ["id"]
    assert landed_offsets(tmp_path) == {("changelake.shop.x", 0): 4}
    with duckdb.connect() as con:
        got = scan(con, tmp_path, T).order("id").fetchall()
        cols = scan(con, tmp_path, T).columns
    assert [r[0] for r in got] == [0, 1, 2, 3]
    assert "_commit_date" in cols
    q = pq.read_table(next(p for p in out.paths if "quarantine" in p.parts))
    assert q.column("value").to_pylist() == [b"\xff{not json"]


def test_incomplete_batch_is_invisible_then_recovered(tmp_path: Path) -> None:
    write_batch(tmp_path, BatchId("t", 0, 0, 1), {T: rows(range(2))}, None, None, NOW)
    done = write_batch(
        tmp_path, BatchId("t", 0, 2, 3), {T: rows(range(2, 4), [1, 2])}, None, None, NOW
    )
    done.paths[1].unlink()  # as if killed between the two files
    (done.paths[0].parent / ".junk.parquet.tmp").write_bytes(b"torn")
    assert landed_offsets(tmp_path) == {("t", 0): 1}
    assert len(files(tmp_path, T)) == 1
    rec = recover(tmp_path)
    assert (rec.incomplete_batches, rec.deleted_files, rec.deleted_temps) == (1, 1, 1)
    assert not done.paths[0].exists()
    assert not list_lake(tmp_path).incomplete


def test_tombstone_only_batch_leaves_marker_and_markers_are_pruned(tmp_path: Path) -> None:
    write_batch(tmp_path, BatchId("t", 3, 0, 9), {T: rows(range(0))}, None, None, NOW)
    assert landed_offsets(tmp_path) == {("t", 3): 9}
    assert files(tmp_path, T) == []
    write_batch(tmp_path, BatchId("t", 3, 10, 11), {T: rows(range(10, 12))}, None, None, NOW)
    assert recover(tmp_path).pruned_markers == 1
    assert landed_offsets(tmp_path) == {("t", 3): 11}


def test_union_by_name_added_column_and_widened_type(tmp_path: Path) -> None:
    write_batch(tmp_path, BatchId("t", 0, 0, 1), {T: rows(range(2))}, None, None, NOW)
    wide = rows(range(2, 4), extra={"note": pa.array(["a", "b"])})
    wide = wide.set_column(0, "id", pa.array([2**40, 3], pa.int64()))
    write_batch(tmp_path, BatchId("t", 0, 2, 3), {T: wide}, None, None, NOW)
    with duckdb.connect() as con:
        got = scan(con, tmp_path, T).order("_offset").select("id, note").fetchall()
    assert got == [(0, None), (1, None), (2**40, "a"), (3, "b")]


def test_file_names_parse_back(tmp_path: Path) -> None:
    b = BatchId("pre.s-1.t%x", 12, 5, 2**40)
    f = parse_file(tmp_path / b.file_name(2, 7))
    assert f is not None and (f.batch, f.k, f.n) == (b, 2, 7)
    assert parse_file(tmp_path / ("." + b.file_name(2, 7) + ".tmp")) is None


@pytest.mark.parametrize("point", ["mid_write", "before_rename", "after_rename"])
def test_crash_points_kill_and_recovery_restores(tmp_path: Path, point: str) -> None:
    script = textwrap.dedent(
        f"""
        import pyarrow as pa, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_bronze_writer import rows, quarantine, T, NOW
        from pipelines.bronze.layout import BatchId
        from pipelines.bronze.writer import write_batch
        write_batch(__import__('pathlib').Path({str(tmp_path)!r}), BatchId("t", 0, 0, 3),
                    {{T: rows(range(3))}}, None, quarantine(3), NOW)
        """
    )
    env = {**os.environ, "CHANGELAKE_CRASH_AT": point}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert proc.returncode == -9
    assert landed_offsets(tmp_path) == {}
    assert files(tmp_path, T) == []
    recover(tmp_path)
    listing = list_lake(tmp_path)
    assert not listing.incomplete and not listing.temp_files and not listing.complete
