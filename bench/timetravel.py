"""P5: ``as_of`` latency over an N-event history, from snapshots vs a full replay of bronze.

The base lake has one silver snapshot per tenth of the history. ``as_of`` at an instant inside the
last tenth starts from the newest snapshot before it; the replay baseline is the same ``as_of``
on a lake that holds only the bronze (a symlink), so it must replay every event. Both answers
must be identical (checked).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.common import Result, Target, rows_differing
from bench.lakegen import TABLE, base_lake, data_dir, events_in, generator
from pipelines.silver import as_of, list_snapshots


def best_of(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def p5_instant(events: int) -> datetime:
    """P5's instant in an ``events``-event history: in its last tenth, between two commits."""
    gen = generator(events)
    last_tx = events // gen.tx_size - 1
    k = last_tx - max(last_tx // 20, 1)
    return datetime.fromtimestamp((gen.commit_us(k) + 500) / 1e6, UTC)


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("P5", "time travel (as_of)", command, smoke=smoke)
    base = base_lake(events, progress=progress)
    n = events_in(base)
    instant = p5_instant(n)
    replay_lake = data_dir() / f"replay-{base.name}"
    replay_lake.mkdir(parents=True, exist_ok=True)
    link = replay_lake / "bronze"
    if not link.exists():
        link.symlink_to(base / "bronze")
    repeats = 1 if smoke else 3
    t_snap, snap = best_of(lambda: as_of(base, TABLE, instant), repeats)
    t_replay, replay = best_of(lambda: as_of(replay_lake, TABLE, instant), repeats)
    diff = rows_differing(snap, replay)
    r.params = {
        "events": n,
        "snapshots": len(list_snapshots(base, TABLE)),
        "instant": instant.isoformat(),
    }
    r.metrics = {
        "as_of_snapshot_s": round(t_snap, 3),
        "as_of_replay_s": round(t_replay, 3),
        "speedup": round(t_replay / t_snap, 2),
        "rows": snap.num_rows,
        "rows_differing": int(diff),
        "repeats_best_of": repeats,
    }
    r.targets = [
        Target("as_of latency", round(t_snap, 3), "<=", 1.0, "s"),
        Target("speedup vs replay", round(t_replay / t_snap, 2), ">=", 10, "x"),
    ]
    if diff:
        r.notes.append(f"MISMATCH: snapshot-based and replayed as_of differ in {diff} rows")
    if n < 10_000_000:
        r.notes.append(
            f"history of {n:,} events, not 10 M (shared machine); replay cost grows "
            "with history, snapshot-based cost with one snapshot + one tenth of it"
        )
    return [r]
