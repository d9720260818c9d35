"""I2: P5 on the Iceberg tables: ``as_of`` from an Iceberg silver snapshot + Iceberg bronze vs a
full replay of Iceberg bronze, beside the lake's own ``as_of`` at the same instant.

The base lake of P5 (one silver snapshot per tenth of the history) is published to Iceberg
(``publish_lake``, SQLite catalog, local disk); the replay baseline is a catalog that holds only
the bronze table (a lake with only the bronze, published), so ``as_of`` must replay every event.
All three answers must be the same rows (the lake's conformed to Iceberg's types; checked).
"""

from __future__ import annotations

import shutil

from bench.common import Result, Target, rows_differing
from bench.lakegen import TABLE, base_lake, events_in, work_copy
from bench.timetravel import best_of, p5_instant
from pipelines.config import Settings
from pipelines.iceberg import timetravel as iceberg_tt
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.publish import publish_lake
from pipelines.silver import as_of


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("I2", "time travel on Iceberg (as_of)", command, smoke=smoke)
    base = base_lake(events, progress=progress)
    n = events_in(base)
    instant = p5_instant(n)  # the instant P5 uses
    snap_lake = work_copy(base, f"work-i2-{n}", silver=True)
    replay_lake = work_copy(base, f"work-i2-replay-{n}", silver=False)
    homes = [lake.parent / f"{lake.name}-home" for lake in (snap_lake, replay_lake)]
    try:
        settings = [
            Settings(_env_file=None, home=home, lake=lake)
            for home, lake in zip(homes, (snap_lake, replay_lake), strict=True)
        ]
        progress(f"  I2: publishing {n:,} events (with and without silver) to Iceberg")
        for s in settings:
            shutil.rmtree(s.home, ignore_errors=True)
            publish_lake(s)
        repeats = 1 if smoke else 3
        t_lake, lake_rows = best_of(lambda: as_of(base, TABLE, instant), repeats)
        t_snap, snap = best_of(lambda: iceberg_tt.as_of(settings[0], TABLE, instant), repeats)
        t_replay, replay = best_of(lambda: iceberg_tt.as_of(settings[1], TABLE, instant), repeats)
        want = to_iceberg(lake_rows).select(snap.column_names)
        diff = rows_differing(snap, replay) + rows_differing(snap, want)
        r.params = {"events": n, "snapshots": 10, "instant": instant.isoformat()}
        r.metrics = {
            "as_of_iceberg_snapshot_s": round(t_snap, 3),
            "as_of_iceberg_replay_s": round(t_replay, 3),
            "as_of_lake_s": round(t_lake, 3),
            "speedup": round(t_replay / t_snap, 2),
            "iceberg_vs_lake": round(t_snap / t_lake, 2),
            "rows": snap.num_rows,
            "rows_differing": int(diff),
            "repeats_best_of": repeats,
        }
        r.targets = [
            Target("as_of latency (Iceberg)", round(t_snap, 3), "<=", 1.0, "s"),
            Target("speedup vs replay (Iceberg)", round(t_replay / t_snap, 2), ">=", 10, "x"),
            Target("Iceberg / lake as_of time", round(t_snap / t_lake, 2), "info", 0, "x"),
        ]
        if diff:
            r.notes.append(f"MISMATCH: the three as_of answers differ in {diff} rows")
    finally:
        for path in (snap_lake, replay_lake, *homes):
            shutil.rmtree(path, ignore_errors=True)
    return [r]
