"""I4: P1 on the Iceberg-stored lake: the lander as deployed, from a Kafka backlog, into Iceberg.

The same backlog P1 uses (``bench.landing.backlog``: produced on the private stack, kept for the
next run of the same size), then back to back: the raw fetch-and-discard baseline, the lander
into the Parquet lake, and the lander with ``CHANGELAKE_LAKE_FORMAT=iceberg`` into a fresh
Iceberg catalog (one commit per table and poll, offsets in the snapshot summaries). Checks that
Iceberg bronze holds every change event once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.common import Result, Target
from bench.kafkaload import raw_fetch
from bench.lakegen import TABLE
from bench.landing import _with, backlog, land_as_service
from pipelines.config import Settings
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import BRONZE


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("I4", "landing into Iceberg from Kafka (P1 on Iceberg)", command, smoke=smoke)
    _, s, counts, _ = backlog(events, progress)
    ice_lake = Path(str(s.lake) + "-iceberg")
    shutil.rmtree(ice_lake, ignore_errors=True)
    try:
        n_raw, _, t_raw = raw_fetch(s, s.batch_max_records)
        progress(f"  I4: raw fetch {n_raw:,} records in {t_raw:.1f} s")
        parquet, _ = land_as_service(s)
        progress(f"  I4: landed {parquet.events:,} events as Parquet in {parquet.seconds:.1f} s")
        iceberg, _ = land_as_service(_with(s, lake=ice_lake), CHANGELAKE_LAKE_FORMAT="iceberg")
        progress(f"  I4: landed {iceberg.events:,} events into Iceberg in {iceberg.seconds:.1f} s")
        table = load_table(open_catalog(Settings(_env_file=None, lake=ice_lake)), BRONZE, TABLE)
        offsets = table.scan(selected_fields=("_offset",)).to_arrow()["_offset"].to_pylist()
        commits = len(table.snapshots())
        r.params = {"events": events, "messages": sum(counts.values()), "catalog": "sqlite"}
        raw_rate = n_raw / t_raw
        r.metrics = {
            "raw_fetch_msgs_per_s": round(raw_rate),
            "parquet_events_per_s": round(parquet.events / parquet.seconds),
            "iceberg_events_per_s": round(iceberg.events / iceberg.seconds),
            "parquet_s": round(parquet.seconds, 2),
            "iceberg_s": round(iceberg.seconds, 2),
            "iceberg_msgs_per_s": round(iceberg.messages / iceberg.seconds),
            "iceberg_snapshots_kept": commits,
            "events_in_iceberg": len(offsets),
            "distinct_offsets": len(set(offsets)),
            "stage_s": {k: round(v, 1) for k, v in sorted(iceberg.timings.items())},
        }
        r.targets = [
            Target(
                "landing into Iceberg / raw fetch",
                round(iceberg.messages / iceberg.seconds / raw_rate, 3),
                ">=",
                0.8,
                "x",
            ),
            Target(
                "landing rate (Iceberg)",
                r.metrics["iceberg_events_per_s"],
                ">=",
                50_000,
                "events/s",
            ),  # fmt: skip
            Target(
                "landing into Iceberg / into Parquet",
                round(parquet.seconds / iceberg.seconds, 3),
                "info",
                0,
                "x",
            ),
            Target(
                "every event once in Iceberg bronze",
                len(offsets) - len(set(offsets)),
                "<=",
                0,
                "duplicates",
            ),  # fmt: skip
        ]
        if len(offsets) != iceberg.events or iceberg.events != parquet.events:
            r.notes.append(
                f"MISMATCH: {len(offsets):,} rows in Iceberg, {iceberg.events:,} landed, "
                f"{parquet.events:,} as Parquet"
            )
        if events < 5_000_000:
            r.notes.append(f"a backlog of {events:,} events, not P1's 5 M")
    finally:
        shutil.rmtree(s.lake, ignore_errors=True)
        shutil.rmtree(ice_lake, ignore_errors=True)
    return [r]
