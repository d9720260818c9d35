"""Silver compaction on the Iceberg tables (``pipelines.iceberg.compaction``), from the real
connector's recorded messages landed straight into Iceberg: each compaction is one Iceberg
snapshot with its watermark, equal to the Parquet lake's silver compacted from the same batches,
and ``as_of`` over those snapshots equals the lake's at every commit instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import recorded_lake
from iceberg_checks import assert_same_as_the_lake, assert_same_rows, commit_instants
from iceberg_checks import iceberg_table as open_table
from recorded_lake import landed_batches, zoo_settings

from bench.lakegen import TABLE, land_chunk
from bench.synth import Generator
from pipelines.bronze.lander import land_batch
from pipelines.bronze.layout import TRANSACTIONS
from pipelines.bronze.topics import home_tables
from pipelines.config import Settings
from pipelines.iceberg import compaction
from pipelines.iceberg import timetravel as iceberg_timetravel
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.landing import IcebergStore
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.silver_publish import WATERMARK_LSN_KEY
from pipelines.iceberg.timetravel import watermarked
from pipelines.silver import compact, timetravel

pytestmark = pytest.mark.unit
FAR = datetime(9999, 1, 1, tzinfo=UTC)


def test_compacting_iceberg_bronze_equals_the_lakes_silver(tmp_path: Path) -> None:
    settings = zoo_settings(tmp_path / "home")
    store = IcebergStore(settings, home_tables(settings))
    batches = landed_batches(settings, 2)
    firsts = [b for i, b in enumerate(batches) if i == 0 or b[0].topic != batches[i - 1][0].topic]
    rounds = [firsts, [b for b in batches if b not in firsts]]
    for batch_round in rounds:  # half of every partition, compacted; then the rest
        for batch in batch_round:
            land_batch(settings.lake_root, batch, topic_prefix="zoo")
            land_batch(settings.lake_root, batch, topic_prefix="zoo", store=store)
        recorded_lake.compact_all(settings.lake_root)
        done = compaction.compact_all(settings)
        assert all(c.changed for c in done), done
        for qn in recorded_lake.TABLES:  # the Iceberg snapshot == the lake's silver now
            current = open_table(settings, SILVER, qn).scan().to_arrow()
            lake_now = to_iceberg(timetravel.as_of(settings.lake_root, qn, FAR))
            assert_same_rows(current, lake_now, qn)
    for qn in recorded_lake.TABLES:
        silver = open_table(settings, SILVER, qn)
        marks = watermarked(silver)
        assert len(marks) == 2 and marks[0].watermark_lsn < marks[1].watermark_lsn, qn
        assert silver.current_snapshot().summary[WATERMARK_LSN_KEY] == str(marks[1].watermark_lsn)
        # time travel over these snapshots (plus bronze after them) == the lake's, everywhere
        assert assert_same_as_the_lake(settings, qn, commit_instants(settings, qn, 8)) >= 2
    again = compaction.compact_all(settings)  # nothing new: no snapshot
    assert not any(c.changed for c in again)


def test_an_incremental_compaction_rewrites_only_the_partitions_that_changed(
    tmp_path: Path,
) -> None:
    settings = zoo_settings(tmp_path / "home")
    store = IcebergStore(settings, home_tables(settings))
    batches = landed_batches(settings, 2)
    firsts = [b for i, b in enumerate(batches) if i == 0 or b[0].topic != batches[i - 1][0].topic]
    qn = recorded_lake.TABLES[3]  # zoo.precisions: rows keep their keys, two of them unchanged
    done = []
    for batch_round in (firsts, [b for b in batches if b not in firsts]):
        for batch in batch_round:
            land_batch(settings.lake_root, batch, topic_prefix="zoo", store=store)
        done.append(compaction.compact(settings, qn, partition_bytes=64).published)  # tiny
    second = done[1]
    assert second.partitions > 2 and not second.changes
    # the published state read back compares equal where its rows did not change
    assert 0 < second.partitions_rewritten[0] < second.partitions


def _files(settings: Settings) -> dict[str, object]:
    """The data files of the synthetic table's current silver snapshot -> their partition."""
    silver = open_table(settings, SILVER, TABLE)
    return {t.file.file_path: t.file.partition[0] for t in silver.scan().plan_files()}


def test_a_compaction_reads_and_rewrites_only_the_key_ranges_its_events_touch(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None, home=tmp_path / "home", iceberg_silver_partition_bytes=20_000
    )
    lake = tmp_path / "parquet-lake"  # the same events compacted by the Parquet lake: the truth
    gen = Generator(keys=2000, tx_size=5, delete_every=20)  # event i changes key i % 2000
    topics = gen.chunk(0, 5)
    store = IcebergStore(settings, {topics.table[0].topic: TABLE, topics.tx[0].topic: TRANSACTIONS})
    for n, (start, count) in enumerate(((0, 2000), (2000, 250), (2250, 100), (2350, 600))):
        land_chunk(lake, gen.chunk(start, count))
        land_chunk(settings.lake_root, gen.chunk(start, count), store=store)
        compact(lake, TABLE, catalog=False)
        before = _files(settings) if n else {}
        done = compaction.compact(settings, TABLE)
        silver = open_table(settings, SILVER, TABLE)
        lake_now = to_iceberg(timetravel.as_of(lake, TABLE, FAR))
        assert_same_rows(silver.scan().to_arrow(), lake_now, (n, TABLE))
        assert done.rows == lake_now.num_rows, n
        if not n:
            assert silver.spec().fields and not done.partial  # the first: every event, no base
            continue
        # keys start..start+count-1 (mod 2000) changed: only their ranges were read and written
        assert done.partial and 0 < done.start_rows_read < lake_now.num_rows // 2, done
        after = _files(settings)
        rewritten = {after[f] for f in set(after) - set(before)}
        kept = {f for f in before if f in after}
        assert rewritten and all(before[f] not in rewritten for f in kept)
        assert len(kept) >= len(before) // 2, (len(kept), len(before))


def test_a_truncate_or_a_keyless_table_applies_the_events_to_every_row(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, home=tmp_path / "home", iceberg_silver_partition_bytes=20_000
    )
    gen = Generator(keys=2000, tx_size=5)
    topics = gen.chunk(0, 5)
    store = IcebergStore(settings, {topics.table[0].topic: TABLE, topics.tx[0].topic: TRANSACTIONS})
    land_chunk(settings.lake_root, gen.chunk(0, 2000), store=store)
    compaction.compact(settings, TABLE)
    silver = open_table(settings, SILVER, TABLE)
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE new_events AS SELECT * FROM (VALUES ('u', 5), ('c', 1999)) e(_op, id)"
    )
    only, where = compaction._touched(con, silver, ["id"])
    assert only is not None and len(only) == 2 and where != "true"
    in_ranges = con.execute(f"SELECT count(*) FROM range(2000) r(id) WHERE {where}").fetchone()[0]  # noqa: S608  # noqa: S608
    assert 0 < in_ranges < 2000  # the two ranges, not the table
    assert compaction._touched(con, silver, []) == (None, "true")  # no key
    con.execute("INSERT INTO new_events VALUES ('t', NULL)")
    assert compaction._touched(con, silver, ["id"]) == (None, "true")


def test_a_schema_change_makes_the_compaction_read_the_whole_start_snapshot(
    tmp_path: Path,
) -> None:
    settings = zoo_settings(tmp_path / "home", iceberg_silver_partition_bytes=64)  # tiny
    store = IcebergStore(settings, home_tables(settings))
    batches = landed_batches(settings, 2)
    firsts = [b for i, b in enumerate(batches) if i == 0 or b[0].topic != batches[i - 1][0].topic]
    done: dict[str, list[compaction.Compacted]] = {}
    for batch_round in (firsts, [b for b in batches if b not in firsts]):
        for batch in batch_round:
            land_batch(settings.lake_root, batch, topic_prefix="zoo", store=store)
            land_batch(tmp_path / "lake", batch, topic_prefix="zoo")
        recorded_lake.compact_all(tmp_path / "lake")
        for c in compaction.compact_all(settings):
            done.setdefault(c.table, []).append(c)
        for qn in recorded_lake.TABLES:
            lake_now = to_iceberg(timetravel.as_of(tmp_path / "lake", qn, FAR))
            assert_same_rows(open_table(settings, SILVER, qn).scan().to_arrow(), lake_now, qn)
    # zoo.evolving's second round changes a column's type: it cannot stay partial
    evolving = done["zoo.evolving"][1]
    assert evolving.changed and evolving.published.changes and not evolving.partial
    assert done["zoo.precisions"][1].partial  # the same rows, no schema change


def test_compaction_keeps_the_newest_snapshots_and_one_per_interval_of_history(
    tmp_path: Path,
) -> None:
    # ten compactions 20 minutes of commits apart; keep the newest 2 and one per hour
    settings = Settings(
        _env_file=None,
        home=tmp_path / "home",
        silver_keep_snapshots=2,
        silver_keep_every_minutes=60,
    )
    lake = tmp_path / "parquet-lake"  # the truth for as_of
    gen = Generator(keys=200, tx_size=5, delete_every=20, tx_interval_us=10 * 60 * 1_000_000)
    topics = gen.chunk(0, 5)
    store = IcebergStore(settings, {topics.table[0].topic: TABLE, topics.tx[0].topic: TRANSACTIONS})
    marks = []
    for n in range(10):
        land_chunk(lake, gen.chunk(n * 10, 10))
        land_chunk(settings.lake_root, gen.chunk(n * 10, 10), store=store)
        compact(lake, TABLE, catalog=False)
        done = compaction.compact(settings, TABLE)
        marks.append((done.snapshot_id, datetime.fromisoformat(done.watermark_ts)))
    silver = open_table(settings, SILVER, TABLE)
    left = {b.watermark_time for b in watermarked(silver)}
    assert marks[-1][1] in left and marks[-2][1] in left  # the newest two
    hours = {int(ts.timestamp() // 3600) for _, ts in marks}
    assert {int(ts.timestamp() // 3600) for ts in left} == hours  # every hour of history
    assert len(left) < len(marks)  # and fewer than all: the others expired
    assert len(silver.snapshots()) == len(left)
    for _, ts in marks:  # as_of anywhere still equals the lake's
        got = iceberg_timetravel.as_of(settings, TABLE, ts)
        assert_same_rows(got, to_iceberg(timetravel.as_of(lake, TABLE, ts)), ts)


def test_retain_expires_iceberg_silver_snapshots_by_the_same_rule(tmp_path: Path) -> None:
    from pipelines.iceberg.retention import retain

    settings = Settings(_env_file=None, home=tmp_path / "home", silver_keep_snapshots=50)
    gen = Generator(keys=200, tx_size=5, tx_interval_us=10 * 60 * 1_000_000)
    topics = gen.chunk(0, 5)
    store = IcebergStore(settings, {topics.table[0].topic: TABLE, topics.tx[0].topic: TRANSACTIONS})
    for n in range(4):
        land_chunk(settings.lake_root, gen.chunk(n * 10, 10), store=store)
        compaction.compact(settings, TABLE)
    assert len(watermarked(open_table(settings, SILVER, TABLE))) == 4  # 50 kept: nothing gone
    expired = retain(settings, keep_last=1, keep_every=timedelta(0))
    assert len(expired[str(TABLE)]) == 3
    silver = open_table(settings, SILVER, TABLE)
    assert len(silver.snapshots()) == 1 and silver.current_snapshot() is not None
    assert silver.scan().to_arrow().num_rows > 0
