"""I3: the lake stored in Iceberg (``CHANGELAKE_LAKE_FORMAT=iceberg``): P1, P3 and P4 on it.

- **Landing cost of the format** (P1's decode-and-store half; the Kafka fetch is the same for
  both formats): the same synthetic batches (50,000 events, one batch per topic) decoded and
  stored as the lander does, into the Parquet lake (``ParquetStore``) and straight into Iceberg
  (``IcebergStore``: one commit per table and batch, offsets in the summary).
- **P3 on Iceberg**: the 10 M-event bronze history as Iceberg tables (copied from the base lake
  by the bronze publisher, so the events are the same as P3's), then a full Iceberg compaction
  (``iceberg.compaction``: no silver yet, every event replayed), against P3's <= 15 s.
- **P4 on Iceberg**: +1 % events landed straight into Iceberg, then the incremental compaction
  (newest silver snapshot + the events after its watermark), against P4's <= 0.1 x of the full;
  with the silver bytes and key partitions it rewrote.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.common import Result, Target
from bench.lakegen import TABLE, append_events, generator, work_lake
from pipelines.bronze.layout import TRANSACTIONS, list_lake
from pipelines.config import Settings
from pipelines.iceberg import compaction
from pipelines.iceberg.bronze_publish import bronze_source, publish_batches
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.landing import IcebergStore
from pipelines.iceberg.names import BRONZE, SILVER

LANDING_EVENTS = 1_000_000  # events of the landing comparison (at most the history's size)


def _store(settings: Settings, topics: tuple[str, str]) -> IcebergStore:
    table_topic, tx_topic = topics
    return IcebergStore(settings, {table_topic: TABLE, tx_topic: TRANSACTIONS})


def _topics(n: int) -> tuple[str, str]:
    chunk = generator(n).chunk(0, 5)
    return chunk.table[0].topic, chunk.tx[0].topic


def _landing(root: Path, n: int) -> dict[str, float]:
    """Seconds to decode and store ``n`` events into each format, and the Iceberg commits."""
    out = {}
    parquet = root / "landing-parquet"
    t0 = time.monotonic()
    append_events(parquet, generator(n), 0, n)
    out["parquet_s"] = time.monotonic() - t0
    settings = Settings(_env_file=None, home=root / "landing-iceberg", lake=root / "li-lake")
    store = _store(settings, _topics(n))
    t0 = time.monotonic()
    append_events(settings.lake_root, generator(n), 0, n, store=store)
    out["iceberg_s"] = time.monotonic() - t0
    out["iceberg_commits"] = sum(store._commits.values())
    return out


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("I3", "the lake stored in Iceberg (P1, P3, P4)", command, smoke=smoke)
    n, lake, settings = work_lake(events, "work-i3", silver=False, progress=progress)
    home = settings.home
    try:
        land_n = min(LANDING_EVENTS, n) - min(LANDING_EVENTS, n) % 5
        progress(f"  I3: decoding and storing {land_n:,} events as Parquet, then as Iceberg")
        landing = _landing(lake.parent / f"{lake.name}-landing", land_n)
        progress(f"  I3: the {n:,}-event history into Iceberg bronze")
        catalog = open_catalog(settings)
        listing = list_lake(lake)
        for name in (TABLE, TRANSACTIONS):
            publish_batches(catalog, bronze_source(lake, name), listing, small_files=None)
        progress("  I3: full Iceberg compaction")
        full = compaction.compact(settings, TABLE)
        delta = max(n // 100 - (n // 100) % 5, 5)
        store = _store(settings, _topics(n))
        append_events(lake, generator(n), n, delta, store=store)
        progress(f"  I3: +{delta:,} events landed into Iceberg, incremental compaction")
        inc = compaction.compact(settings, TABLE)
        silver = load_table(open_catalog(settings), SILVER, TABLE)
        silver_bytes = sum(t.file.file_size_in_bytes for t in silver.scan().plan_files())
        bronze = load_table(open_catalog(settings), BRONZE, TABLE)
        offsets = bronze.scan(selected_fields=("_offset",)).to_arrow()["_offset"]
        distinct = len(set(offsets.to_pylist()))
        assert full.published is not None and inc.published is not None
        r.params = {"events": n, "keys": n // 10, "catalog": "sqlite", "storage": "local disk"}
        r.metrics = {
            "landing_events": land_n,
            "landing_parquet_s": round(landing["parquet_s"], 2),
            "landing_iceberg_s": round(landing["iceberg_s"], 2),
            "landing_iceberg_commits": landing["iceberg_commits"],
            "landing_parquet_events_s": round(land_n / landing["parquet_s"]),
            "landing_iceberg_events_s": round(land_n / landing["iceberg_s"]),
            "full_compaction_s": round(full.seconds, 2),
            "full_rows": full.rows,
            "full_events": full.events_applied,
            "incremental_events": delta,
            "incremental_compaction_s": round(inc.seconds, 2),
            "incremental_silver_bytes_rewritten": inc.published.bytes_written,
            "incremental_partitions_rewritten": sum(inc.published.partitions_rewritten),
            "incremental_start_rows_read": inc.start_rows_read,
            "incremental_partial": inc.partial,
            "silver_partitions": inc.published.partitions,
            "silver_table_bytes": silver_bytes,
            "events_in_iceberg": len(offsets),
            "distinct_offsets": distinct,
        }
        r.targets = [
            Target(
                "landing into Iceberg / into Parquet (decode + store, events/s)",
                round(landing["parquet_s"] / landing["iceberg_s"], 3),
                "info",
                0,
                "x",
            ),
            Target(f"full Iceberg compaction, {n:,} events", round(full.seconds, 2), "<=", 15, "s"),
            Target(
                "incremental / full (Iceberg)",
                round(inc.seconds / max(full.seconds, 1e-9), 4),
                "<=",
                0.1,
                "x",
            ),
            Target(
                "+1 %: silver bytes rewritten / silver table bytes",
                round(inc.published.bytes_written / max(silver_bytes, 1), 3),
                "info",
                0,
                "x",
            ),
            Target(
                "every event once in Iceberg bronze", len(offsets) - distinct, "<=", 0, "duplicates"
            ),
        ]
        if len(offsets) != n + delta:
            r.notes.append(f"MISMATCH: {len(offsets):,} events in Iceberg, {n + delta:,} landed")
    finally:
        shutil.rmtree(lake, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(lake.parent / f"{lake.name}-landing", ignore_errors=True)
    return [r]
