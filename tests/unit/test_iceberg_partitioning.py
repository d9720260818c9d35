"""Silver on Iceberg, partitioned by key: a publish rewrites only the partitions it changes
(pipelines/iceberg/partitioning.py, silver_publish.py), on real pyiceberg and DuckDB.

Every Iceberg snapshot is compared with the silver snapshot it publishes (the lake's
Parquet, conformed to Iceberg's types), row for row as text; a crashed publisher is a real
SIGKILL of a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import recorded_lake
from iceberg_checks import publish_in_two_halves
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.transforms import BucketTransform, TruncateTransform

from bench.lakegen import TABLE, land_chunk
from bench.synth import Generator
from pipelines.config import Settings
from pipelines.iceberg import partitioning
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.publish import publish_lake
from pipelines.iceberg.silver_publish import SNAPSHOT_KEY, _rows, publish_silver
from pipelines.naming import QualifiedName
from pipelines.silver import compact, snapshots

pytestmark = pytest.mark.unit
KEYS = 3000


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """``a`` and ``b`` hold the same rows (as text, in any order)."""
    with duckdb.connect() as con:
        con.register("a", a)
        con.register("b", b)
        cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in a.column_names)
        diff = con.sql(
            f"(SELECT {cols} FROM a EXCEPT ALL SELECT {cols} FROM b) UNION ALL "  # noqa: S608
            f"(SELECT {cols} FROM b EXCEPT ALL SELECT {cols} FROM a)"
        ).fetchall()
    return a.num_rows == b.num_rows and not diff


def assert_every_state_published(settings: Settings, qn: QualifiedName) -> Table:
    """Each Iceberg snapshot of silver ``qn`` holds exactly its silver snapshot's rows."""
    table = load_table(open_catalog(settings), SILVER, qn)
    manifests = {m.snapshot_id: m for m in snapshots.list_snapshots(settings.lake_root, qn)}
    checked = 0
    for snap in table.snapshots():
        m = manifests.get(snap.summary[SNAPSHOT_KEY])
        if m is None:
            continue
        want = to_iceberg(_rows(settings.lake_root, qn, m))
        got = table.scan(snapshot_id=snap.snapshot_id).to_arrow().select(want.column_names)
        assert _same_rows(got, want), (qn, m.snapshot_id)
        checked += 1
    assert checked == len(manifests), qn
    return table


def _synthetic_lake(lake: Path, *, more: int) -> Generator:
    """KEYS inserts compacted, then ``more`` changes to keys 0..more-1, compacted."""
    gen = Generator(keys=KEYS, tx_size=5, delete_every=20)
    land_chunk(lake, gen.chunk(0, KEYS))
    compact(lake, TABLE, catalog=False)
    land_chunk(lake, gen.chunk(KEYS, more))
    compact(lake, TABLE, catalog=False)
    return gen


def _settings_for_ranges(tmp_path: Path, lake: Path, ranges: int) -> Settings:
    """Settings whose partition size makes the first silver state about ``ranges`` ranges."""
    first = snapshots.list_snapshots(lake, TABLE)[0]
    rows = to_iceberg(_rows(lake, TABLE, first))
    per_row = rows.nbytes // rows.num_rows
    return Settings(
        _env_file=None,
        home=tmp_path / "home",
        lake=lake,
        iceberg_silver_partition_bytes=per_row * KEYS // ranges,
    )


def test_an_incremental_compaction_rewrites_only_the_ranges_it_touched(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _synthetic_lake(lake, more=100)  # keys 0..99: the first range only
    settings = _settings_for_ranges(tmp_path, lake, 15)
    report = publish_lake(settings)
    silver = next(t for t in report.tables if t.layer == SILVER)
    table = assert_every_state_published(settings, TABLE)
    transform = table.spec().fields[0].transform
    assert isinstance(transform, TruncateTransform) and transform.width == 200
    # the first state wrote every range; the second only the one holding keys 0..99
    assert silver.partitions == 15 and silver.partitions_rewritten == [15, 1]
    first, second = (int(s.summary["added-files-size"]) for s in table.snapshots())
    assert second < first / 5
    assert publish_lake(settings).snapshots == 0


def test_a_publisher_killed_mid_partial_rewrite_leaves_the_published_state(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    gen = _synthetic_lake(lake, more=100)
    settings = _settings_for_ranges(tmp_path, lake, 15)
    publish_lake(settings)
    land_chunk(lake, gen.chunk(KEYS + 100, 50))  # keys 100..149, still the first range (0..199)
    compact(lake, TABLE, catalog=False)
    child = (
        "import sys; from pathlib import Path; from pipelines.iceberg.catalog import "
        "open_catalog; from pipelines.iceberg.silver_publish import publish_silver; "
        "from pipelines.config import Settings; from bench.lakegen import TABLE; "
        "s = Settings(_env_file=None, home=Path(sys.argv[1]), lake=Path(sys.argv[2]), "
        "iceberg_silver_partition_bytes=int(sys.argv[3])); "
        "publish_silver(open_catalog(s), s.lake_root, TABLE, "
        "partition_bytes=s.iceberg_silver_partition_bytes)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    env |= {"CHANGELAKE_CRASH_AT": "publish_staged"}
    args = [str(settings.home), str(lake), str(settings.iceberg_silver_partition_bytes)]
    proc = subprocess.run([sys.executable, "-c", child, *args], env=env, check=False)
    assert proc.returncode == -9
    table = load_table(open_catalog(settings), SILVER, TABLE)
    assert len(table.snapshots()) == 2  # the killed commit is not in
    again = publish_silver(
        open_catalog(settings),
        lake,
        TABLE,
        partition_bytes=settings.iceberg_silver_partition_bytes,
    )
    assert again.partitions_rewritten == [1]
    assert_every_state_published(settings, TABLE)


def test_the_recorded_lake_partitioned_to_single_keys_publishes_every_state(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home", iceberg_silver_partition_bytes=1)
    lake = settings.lake_root
    report = publish_in_two_halves(settings)
    keyed = 0
    for qn in recorded_lake.TABLES:
        table = assert_every_state_published(settings, qn)
        manifest = snapshots.current(lake, qn)
        if manifest.key and manifest.rows >= 2:
            assert partitioning.current(table) is not None, qn
            keyed += 1
        else:
            assert partitioning.current(table) is None, qn
    assert keyed >= 2
    rewritten = {t.table: t.partitions_rewritten for t in report.tables if t.layer == SILVER}
    assert rewritten, report.tables


def test_a_text_key_is_bucketed_and_one_changed_key_rewrites_one_bucket(tmp_path: Path) -> None:
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("silver")
    keys = [f"customer-{i:05d}" for i in range(4000)]
    rows = pa.table({"code": keys, "n": pa.array(range(4000), pa.int64())})
    table = catalog.create_table("silver.t", schema=rows.schema)
    want = partitioning.choose(table, ["code"], rows, target_bytes=rows.nbytes // 10)
    assert want is not None and isinstance(want.transform, BucketTransform)
    assert want.transform.num_buckets == 16  # 4000 rows / ~400 a bucket, rounded up to 2^k
    assert partitioning.apply(table, want) and not partitioning.apply(table, want)
    table.append(rows)
    changed = rows.set_column(1, "n", pa.array([*range(3999), -1], pa.int64()))
    parts = partitioning.partition_values(table, rows)
    values = partitioning.changed(rows, parts, changed, parts)
    assert values == [parts[3999].as_py()]
    assert partitioning.rows_in(changed, parts, values).num_rows == sum(
        1 for p in parts.to_pylist() if p == values[0]
    )
    # the same rows, a fourth of the target: grown past 4x per bucket, the count grows too
    grown = partitioning.choose(table, ["code"], rows, target_bytes=rows.nbytes // 80)
    assert grown.transform.num_buckets == 128
    assert partitioning.choose(table, ["code"], rows, target_bytes=rows.nbytes // 20) == want


@pytest.mark.parametrize(
    ("raw", "width"), [(0.3, 1), (1, 1), (1.5, 2), (3, 5), (7, 10), (300, 500), (120.5, 200)]
)
def test_range_widths_are_readable_bounds(raw: float, width: int) -> None:
    assert partitioning.nice_width(raw) == width


def test_truncate_partitions_read_back_as_merged_key_ranges(tmp_path: Path) -> None:
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("silver")
    rows = pa.table({"id": pa.array(range(-250, 1000), pa.int64())})
    table = catalog.create_table("silver.t", schema=rows.schema)
    assert partitioning.range_predicate(table, [0]) is None  # unpartitioned: no ranges
    partitioning.apply(table, partitioning.Partitioning("id", TruncateTransform(100)))
    values = partitioning.partition_values(table, rows).to_pylist()
    touched = [values[i] for i in (0, 249, 250, 350, 351, 1240)]  # -300 -100 0 100 100 900
    where = partitioning.range_predicate(table, touched)
    assert where.count(" OR ") == 2  # [-300, -200), [-100, 200) merged from three, [900, 1000)
    with duckdb.connect() as con:
        con.register("r", rows)
        got = con.execute(f"SELECT list(id ORDER BY id) FROM r WHERE {where}").fetchone()[0]  # noqa: S608
    want = [v for v, p in zip(rows["id"].to_pylist(), values, strict=True) if p in set(touched)]
    assert got == want
    assert partitioning.range_predicate(table, [None]) is None  # a NULL key: not a range
