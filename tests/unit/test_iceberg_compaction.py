"""Silver compaction on the Iceberg tables (``pipelines.iceberg.compaction``), from the real
connector's recorded messages landed straight into Iceberg: each compaction is one Iceberg
snapshot with its watermark, equal to the Parquet lake's silver compacted from the same batches,
and ``as_of`` over those snapshots equals the lake's at every commit instant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import recorded_lake
from iceberg_checks import assert_same_as_the_lake, assert_same_rows, commit_instants
from iceberg_checks import iceberg_table as open_table
from recorded_lake import landed_batches, zoo_settings

from pipelines.bronze.lander import land_batch
from pipelines.bronze.topics import home_tables
from pipelines.iceberg import compaction
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.landing import IcebergStore
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.silver_publish import WATERMARK_LSN_KEY
from pipelines.iceberg.timetravel import watermarked
from pipelines.silver import timetravel

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
