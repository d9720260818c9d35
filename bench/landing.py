"""P1 landing throughput (raw kafka-python fetch vs full bronze landing) and P6 landing memory.

One backlog of N synthetic, real-shaped events is produced into a fresh topic pair on the private
stack (and kept there for the next run of the same size). Then, back to back on the same topics:
the raw fetch-and-discard baseline, and the real lander as deployed (``python -m
pipelines.landing``, its own process) into a fresh lake while a thread samples the RSS of the
lander and its decode process every 0.25 s (P6: max and the slope of the curve). If landing is
under 50,000 events/s, a short cProfile of each side names where the time goes.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from kafka import TopicPartition

from bench.common import Result, Target, tree_rss_bytes
from bench.kafkaload import consumer, delete_topics, produce, raw_fetch
from bench.lakegen import data_dir, generator_version
from bench.stack import ensure_stack, lander_process
from bench.synth import Generator
from pipelines.bronze.lander import land
from pipelines.bronze.source import kafka_cluster_id
from pipelines.config import Settings


class RssSampler(threading.Thread):
    """Samples the RSS of a process tree (default: this process) at a fixed interval."""

    def __init__(self, interval: float = 0.25, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.interval, self.samples, self._halt = interval, [], threading.Event()
        self.t0, self.pid = time.perf_counter(), pid

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.perf_counter() - self.t0, tree_rss_bytes(self.pid)))
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join()
        return self.samples


def slope_mib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, second half of the run (after warm-up)."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    n = len(half)
    mx = sum(t for t, _ in half) / n
    my = sum(r for _, r in half) / n
    var = sum((t - mx) ** 2 for t, _ in half)
    if var == 0:
        return 0.0
    cov = sum((t - mx) * (r - my) for t, r in half)
    return cov / var * 60 / 2**20


def top_functions(prof: cProfile.Profile, n: int = 8) -> list[str]:
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(n)
    lines = [ln.strip() for ln in s.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("ncalls")), len(lines))
    return [" ".join(ln.split()[1:2] + ln.split()[5:]) for ln in lines[start + 1 : start + 1 + n]]


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    p1 = Result("P1", "landing throughput", command, smoke=smoke)
    p6 = Result("P6", "landing memory (backlog)", command, smoke=smoke)
    base, s, counts, t_produce = backlog(events, progress)
    prefix = s.topic_prefix
    lake = s.lake
    try:
        n_raw, raw_bytes, t_raw = raw_fetch(s, s.batch_max_records)
        progress(f"  raw fetch: {n_raw:,} records in {t_raw:.1f} s")
        res, samples = land_as_service(s)
        rss0 = samples[0][1] if samples else 0
        progress(
            f"  landed {res.events:,} events ({res.messages:,} messages) in {res.seconds:.1f} s"
        )
        raw_rate = n_raw / t_raw
        land_msg_rate = res.messages / res.seconds
        land_ev_rate = res.events / res.seconds
        p1.params = p6.params = {
            "events": events,
            "messages": sum(counts.values()),
            "value_bytes_avg": round(raw_bytes / max(n_raw, 1)),
        }
        p1.metrics = {
            "raw_fetch_msgs_per_s": round(raw_rate),
            "raw_fetch_mb_per_s": round(raw_bytes / t_raw / 1e6, 1),
            "landing_msgs_per_s": round(land_msg_rate),
            "landing_events_per_s": round(land_ev_rate),
            "ratio_landing_to_raw": round(land_msg_rate / raw_rate, 3),
            "raw_s": round(t_raw, 2),
            "landing_s": round(res.seconds, 2),
            "events_landed": res.events,
            "files": res.files,
            "quarantined": res.quarantined,
            "produce_s": round(t_produce, 1),
            # wall seconds per stage; decode/write run in the decode process, overlapping fetch
            "stage_s": {k: round(v, 1) for k, v in sorted(res.timings.items())},
            "decode_process": s.lander_decode_process,
        }
        p1.targets = [
            Target("raw kafka-python fetch (baseline)", round(raw_rate), "info", 0, "msgs/s"),
            Target("landing / raw fetch", round(land_msg_rate / raw_rate, 3), ">=", 0.8, "x"),
            Target("landing rate", round(land_ev_rate), ">=", 50_000, "events/s"),
        ]
        rss_max = max((r for _, r in samples), default=rss0)
        slope = slope_mib_per_min(samples)
        p6.metrics = {
            "rss_at_start_mib": round(rss0 / 2**20, 1),
            "rss_max_mib": round(rss_max / 2**20, 1),
            "rss_slope_mib_per_min_2nd_half": round(slope, 2),
            "samples": len(samples),
            "rss_max_1st_half_mib": round(
                max((r for _, r in samples[: len(samples) // 2]), default=0) / 2**20, 1
            ),
            "rss_max_2nd_half_mib": round(
                max((r for _, r in samples[len(samples) // 2 :]), default=0) / 2**20, 1
            ),
            "curve_mib": [
                [round(t, 1), round(r / 2**20, 1)]
                for t, r in samples[:: max(1, len(samples) // 40)]
            ],
        }
        p6.targets = [
            Target("max RSS while landing", round(rss_max / 2**20, 1), "<=", 1024, "MiB"),
            # growth is the concern (a leak, or memory following the backlog); falling is fine
            Target("RSS growth (2nd-half slope)", round(slope, 2), "<=", 10, "MiB/min"),
        ]
        if events < 5_000_000:
            p6.notes.append(
                f"backlog of {events:,} events (not 5 M) on the shared machine; the "
                "lander holds at most one poll (batch_max_records) in memory, so RSS "
                "should not depend on backlog size -- the slope shows whether it does"
            )
        if not smoke and land_ev_rate < 50_000:
            p1.notes += _profiles(s, base, prefix)
        if res.events != events:
            p1.notes.append(f"MISMATCH: produced {events} events, landed {res.events}")
    finally:
        shutil.rmtree(lake, ignore_errors=True)
        if smoke or os.environ.get("BENCH_KEEP_BACKLOG", "1") == "0":
            delete_topics(s)
            backlog_marker(s).unlink(missing_ok=True)
    p1.notes.append(
        "rates count Kafka messages (events + tombstones + BEGIN/END) for the ratio; "
        "'landing rate' counts change events landed in bronze"
    )
    return [p1, p6]


def backlog(events: int, progress=print) -> tuple[Settings, Settings, dict[str, int], float]:  # noqa: ANN001
    """The private stack's settings, settings for the backlog of ``events`` (produced, or the
    one kept from an earlier run) with a fresh lake, its message counts, seconds producing."""
    base = ensure_stack(progress=None)
    gen = Generator(keys=max(events // 10, 10), tx_size=5, delete_every=100)
    prefix = f"p1n{events}g{generator_version()}"  # same size + generator: same backlog
    lake = data_dir() / f"lake-{prefix}-pid{os.getpid()}"
    shutil.rmtree(lake, ignore_errors=True)
    s = _with(base, topic_prefix=prefix, lake=lake)
    t0 = time.perf_counter()
    counts = kept_backlog(s)
    if counts is None:
        delete_topics(s)  # a partial backlog of an interrupted run
        counts = produce(s, gen, events)
        keep_backlog(s, counts)
        progress(
            f"  produced {sum(counts.values()):,} messages in {time.perf_counter() - t0:.0f} s"
        )
    else:
        progress(f"  reusing the backlog of {sum(counts.values()):,} messages kept on the stack")
    return base, s, counts, time.perf_counter() - t0


def land_as_service(s: Settings, **env: str) -> tuple[SimpleNamespace, list[tuple[float, int]]]:
    """Run the lander as it is deployed, ``python -m pipelines.landing`` in a process of its own
    (so P6 sees the lander's memory, not this harness's), sampling that process tree's RSS;
    ``env``: more CHANGELAKE_* settings (``CHANGELAKE_LAKE_FORMAT=iceberg``)."""
    proc = lander_process(
        s.lake,
        env={
            "CHANGELAKE_TOPIC_PREFIX": s.topic_prefix,
            "CHANGELAKE_TABLES": "bench.events",
            "CHANGELAKE_LANDER_DECODE_PROCESS": str(s.lander_decode_process).lower(),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    sampler = RssSampler(pid=proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    samples = [x for x in sampler.stop() if x[1] > 0]
    if proc.returncode != 0:
        raise RuntimeError(f"lander exited with {proc.returncode}")
    return SimpleNamespace(**json.loads(out.strip().splitlines()[-1])), samples


def backlog_marker(s: Settings) -> Path:
    return s.home / "bench-backlogs" / f"{s.topic_prefix}.json"


def keep_backlog(s: Settings, counts: dict[str, int]) -> None:
    """Remember a produced backlog (producing 5 M events takes kafka-python ~15 min)."""
    path = backlog_marker(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    cluster = kafka_cluster_id(s.bootstrap_servers)
    path.write_text(json.dumps({"cluster": cluster, "counts": counts}))


def kept_backlog(s: Settings) -> dict[str, int] | None:
    """The message counts of a kept backlog, if its topics on this cluster still end there."""
    path = backlog_marker(s)
    if not path.exists():
        return None
    kept = json.loads(path.read_text())
    if kept["cluster"] != kafka_cluster_id(s.bootstrap_servers):
        return None
    c = consumer(s)
    try:
        tps = [TopicPartition(t, 0) for t in kept["counts"]]
        ends = c.end_offsets(tps)
    except Exception:  # noqa: BLE001 - topics gone: produce again
        return None
    finally:
        c.close()
    if {tp.topic: ends.get(tp) for tp in tps} != kept["counts"]:
        return None
    return kept["counts"]


def _with(settings: Settings, **changes: object) -> Settings:
    """A changed copy; not ``model_copy``, which would keep the cached ``lake_root``."""
    return Settings(**{**settings.model_dump(), **changes})


def _profiles(s, base, prefix: str) -> list[str]:  # noqa: ANN001
    """cProfile ~15 s of raw fetch and of landing on the same topics (fresh lake)."""
    notes = []
    prof = cProfile.Profile()
    prof.enable()
    raw_fetch(s, s.batch_max_records, max_seconds=15)
    prof.disable()
    notes.append("profile raw fetch (tottime top): " + "; ".join(top_functions(prof, 6)))
    lake2 = Path(str(s.lake) + "-prof")
    s2 = _with(s, lake=lake2)
    prof = cProfile.Profile()
    prof.enable()
    land(s2, max_seconds=15)
    prof.disable()
    shutil.rmtree(lake2, ignore_errors=True)
    notes.append("profile landing (tottime top): " + "; ".join(top_functions(prof, 8)))
    return notes
