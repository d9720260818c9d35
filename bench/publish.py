"""I1: publishing the lake to Iceberg (``changelake publish``'s function, SQLite catalog, local
disk): a whole N-event bronze table and its silver snapshot history, then +1 % events (one
more incremental compaction) published again, then 0.01 % (1,000 events at 10 M), then a
publish with nothing new.

Reported: rows/s and bytes for bronze, per silver snapshot the bytes and key-range partitions
rewritten (silver is partitioned by key, a publish rewrites the partitions whose rows changed),
Iceberg bytes against the Parquet lake's, and the check that the Iceberg bronze holds every
event once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.common import Result, Target
from bench.lakegen import TABLE, append_events, generator, work_lake
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import BRONZE, SILVER
from pipelines.iceberg.publish import PublishReport, publish_lake
from pipelines.silver import compact


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet") if p.is_file())


def _table(report: PublishReport, layer: str):  # noqa: ANN202
    return next(t for t in report.tables if t.layer == layer and t.table == str(TABLE))


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("I1", "publish to Iceberg", command, smoke=smoke)
    n, lake, settings = work_lake(events, "work-i1", silver=True, progress=progress)
    home = settings.home
    try:
        progress(f"  I1: publishing {n:,} events and their silver history")
        first = publish_lake(settings)
        bronze, silver = _table(first, BRONZE), _table(first, SILVER)
        delta = max(n // 100 - (n // 100) % 5, 5)
        append_events(lake, generator(n), n, delta)
        compact(lake, TABLE, catalog=False)
        second = publish_lake(settings)
        small = max(n // 10_000 - (n // 10_000) % 5, 5)
        append_events(lake, generator(n), n + delta, small)
        compact(lake, TABLE, catalog=False)
        third = publish_lake(settings)
        idle = publish_lake(settings)
        catalog = open_catalog(settings)
        iceberg_bronze = load_table(catalog, BRONZE, TABLE)
        offsets = iceberg_bronze.scan(selected_fields=("_offset",)).to_arrow()["_offset"]
        distinct = len(set(offsets.to_pylist()))
        warehouse = Path(settings.iceberg_warehouse_location)
        silver_files = load_table(catalog, SILVER, TABLE).scan().plan_files()
        silver_table_bytes = sum(task.file.file_size_in_bytes for task in silver_files)
        b2, s2 = _table(second, BRONZE), _table(second, SILVER)
        s3 = _table(third, SILVER)
        r.params = {"events": n, "keys": n // 10, "catalog": "sqlite", "storage": "local disk"}
        r.metrics = {
            "bronze_rows": bronze.rows,
            "first_publish_s": round(first.seconds, 2),
            "rows_per_s_all": round((bronze.rows + silver.rows) / first.seconds),
            "bronze_iceberg_snapshots": len(bronze.snapshots),
            "bronze_bytes": bronze.bytes_written,
            "silver_snapshots": len(silver.snapshots),
            "silver_bytes_per_snapshot": round(
                silver.bytes_written / max(len(silver.snapshots), 1)
            ),
            "incremental_events": delta,
            "incremental_s": round(second.seconds, 2),
            "incremental_bronze_rows": b2.rows,
            "incremental_silver_bytes_rewritten": s2.bytes_written,
            "silver_partitions": s2.partitions,
            "silver_table_bytes": silver_table_bytes,
            "incremental_partitions_rewritten": sum(s2.partitions_rewritten),
            "small_events": small,
            "small_s": round(third.seconds, 2),
            "small_silver_bytes_rewritten": s3.bytes_written,
            "small_partitions_rewritten": sum(s3.partitions_rewritten),
            "idle_publish_s": round(idle.seconds, 3),
            "iceberg_bytes": _bytes(warehouse),
            "parquet_lake_bytes": _bytes(lake / "bronze") + _bytes(lake / "silver"),
            "events_in_iceberg": len(offsets),
            "distinct_offsets": distinct,
        }
        r.targets = [
            Target(
                "first publish, rows/s (bronze + silver)",
                r.metrics["rows_per_s_all"],
                "info",
                0,
                "rows/s",
            ),
            Target(
                "+1 % publish: silver bytes rewritten / silver table bytes",
                round(s2.bytes_written / max(silver_table_bytes, 1), 3),
                "info",
                0,
                "x",
            ),
            Target(
                "0.01 % publish: silver bytes rewritten / silver table bytes",
                round(s3.bytes_written / max(silver_table_bytes, 1), 3),
                "info",
                0,
                "x",
            ),
            Target(
                "every event once in Iceberg bronze", len(offsets) - distinct, "<=", 0, "duplicates"
            ),
        ]
        if len(offsets) != n + delta + small:
            r.notes.append(
                f"MISMATCH: {len(offsets):,} events in Iceberg, {n + delta + small:,} landed"
            )
        r.notes.append(
            "the generator's changes go to consecutive keys (like OLTP's recent rows), so they "
            "fall in few of silver's key ranges; changes spread over every range rewrite them all"
        )
    finally:
        shutil.rmtree(lake, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    return [r]
