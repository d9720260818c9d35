"""``as_of`` over the Iceberg tables (pipelines/iceberg/timetravel.py) against the lake's own.

At every commit instant of the recorded type zoo and of a synthetic history (5-event
transactions, deletes, a key-partitioned silver), the table read from Iceberg -- an Iceberg
silver snapshot plus Iceberg bronze after its watermark -- must hold exactly the rows the
lake's ``as_of`` gives (conformed to Iceberg's types), row for row as text.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import recorded_lake
from iceberg_checks import assert_same_as_the_lake, commit_instants

from bench.lakegen import TABLE, land_chunk
from bench.synth import Generator
from pipelines.config import Settings
from pipelines.iceberg import timetravel as iceberg_tt
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.publish import publish_lake
from pipelines.naming import QualifiedName
from pipelines.silver import compact, timetravel

pytestmark = pytest.mark.unit


def test_the_recorded_lake_reads_the_same_from_iceberg_at_every_instant(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home", iceberg_silver_partition_bytes=1)
    lake = settings.lake_root
    recorded_lake.land(lake, parts=2, upto=0.5)
    recorded_lake.compact_all(lake)
    recorded_lake.land_rest(lake, after=0.5)  # the rest stays bronze-only at first
    publish_lake(settings)
    for qn in recorded_lake.TABLES:
        instants = commit_instants(settings, qn, most=12)
        assert assert_same_as_the_lake(settings, qn, instants), qn
    recorded_lake.compact_all(lake)
    publish_lake(settings)
    for qn in recorded_lake.TABLES:
        assert assert_same_as_the_lake(settings, qn, commit_instants(settings, qn, most=6))


def test_a_partitioned_history_reads_the_same_from_iceberg(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, home=tmp_path / "home", iceberg_silver_partition_bytes=20_000
    )
    lake = settings.lake_root
    gen = Generator(keys=2000, tx_size=5, delete_every=20)
    for start, n in ((0, 2000), (2000, 500), (2500, 500)):
        land_chunk(lake, gen.chunk(start, n))
        compact(lake, TABLE, catalog=False)
    land_chunk(lake, gen.chunk(3000, 250))  # bronze after the last snapshot
    publish_lake(settings)
    silver = load_table(open_catalog(settings), SILVER, TABLE)
    assert silver.spec().fields and len(silver.snapshots()) == 3
    instants = commit_instants(settings, TABLE, most=10)
    assert assert_same_as_the_lake(settings, TABLE, instants) >= 8


def test_no_iceberg_table_says_so(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home")
    with pytest.raises(timetravel.NoSilverData):
        iceberg_tt.as_of(settings, QualifiedName("nope", "missing"), "2026-01-01T00:00:00Z")


def test_the_as_of_command_reads_iceberg_and_keeps_where_to_the_rows(tmp_path: Path) -> None:
    from cli_run import assert_clear_error, run

    settings = Settings(_env_file=None, home=tmp_path / "home")
    recorded_lake.land(settings.lake_root, parts=2)
    recorded_lake.compact_all(settings.lake_root)
    publish_lake(settings)
    qn = recorded_lake.TABLES[0]
    ts = commit_instants(settings, qn, most=1)[-1].isoformat()
    env = {"CHANGELAKE_HOME": str(settings.home)}
    res = run(["as-of", str(qn), ts, "--iceberg", "--format", "csv", "--columns", "id"], env)
    assert res.returncode == 0, res.stderr
    want = sorted(str(v) for v in iceberg_tt.as_of(settings, qn, ts)["id"].to_pylist())
    assert sorted(res.stdout.split()[1:]) == want and want
    one = run(["as-of", str(qn), ts, "--iceberg", "--format", "csv", "--where", "id = 1"], env)
    assert one.returncode == 0 and len(one.stdout.strip().splitlines()) == 2, one.stderr
    sneaky = f"id IN (SELECT 1 FROM read_csv('{tmp_path}/x.csv'))"  # noqa: S608 (the point of the test)
    (tmp_path / "x.csv").write_text("a\n1\n")
    bad = run(["as-of", str(qn), ts, "--iceberg", "--where", sneaky], env)
    assert_clear_error(bad, 2, "--where")


def test_as_of_from_iceberg_says_when_the_table_was_still_being_snapshotted(
    tmp_path: Path,
) -> None:
    """Like the lake's ``as_of``: an instant inside an incremental snapshot that brings the
    table's existing rows in (the lake's bronze ``_notifications``) warns ``SnapshotInProgress``
    and marks the schema; an instant before it began does not."""
    from test_snapshot_progress_rules import PREFIX, T0, full_run, raw

    from pipelines.bronze.lander import land_batch

    settings = Settings(_env_file=None, home=tmp_path / "home")
    lake = settings.lake_root
    gen = Generator(keys=200, tx_size=5)
    land_chunk(lake, gen.chunk(0, 200))
    compact(lake, TABLE, catalog=False)
    publish_lake(settings)
    first = commit_instants(settings, TABLE, most=1)[0]
    start = (first - T0).total_seconds() - 60  # began before any row of the table landed
    run = full_run("changelake-a", start, start + 86_400, table=str(TABLE))[:2]  # unfinished
    land_batch(lake, raw(run), topic_prefix=PREFIX)
    at = commit_instants(settings, TABLE, most=1)[-2]
    with pytest.warns(timetravel.SnapshotInProgress, match="still being snapshotted"):
        rows = iceberg_tt.as_of(settings, TABLE, at)
    assert rows.num_rows == 200
    assert timetravel.SNAPSHOTTING_META in (rows.schema.metadata or {})
    with warnings.catch_warnings():
        warnings.simplefilter("error", timetravel.SnapshotInProgress)
        iceberg_tt.as_of(settings, TABLE, first - timedelta(minutes=5))
