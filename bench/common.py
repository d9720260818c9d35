"""What every figure shares: the result record, machine/version facts, and the JSON output.

A result is a plain dict written to ``bench/results/<figure>.json`` so the Markdown table can be
regenerated from the files alone. Each target is checked here, once, with the gap stated.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PACKAGES = ("pyarrow", "duckdb", "kafka-python", "orjson", "psycopg", "dagster")


@dataclass
class Target:
    """One checked target: ``measured <op> threshold`` with op ``>=`` or ``<=``; op ``info`` is a
    reported figure without a target (the Debezium reference)."""

    name: str
    measured: float | None
    op: str
    threshold: float
    unit: str

    @property
    def met(self) -> bool | None:
        if self.measured is None or self.op == "info":
            return None
        return (
            self.measured >= self.threshold if self.op == ">=" else self.measured <= self.threshold
        )

    @property
    def gap(self) -> str:
        """How far off a missed target is, as a factor of the target ('' when met)."""
        if self.op == "info":
            return ""
        if self.met is None:
            return "not measured"
        if self.met:
            return ""
        m, t = self.measured or 0.0, self.threshold
        if self.op == ">=":
            return f"{(1 - m / t) * 100:.0f}% short" if t else "short"
        return f"{m / t:.1f}x over" if t else "over"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "gap": self.gap}


@dataclass
class Result:
    """One figure's measurements, targets and the context needed to read them."""

    figure: str
    title: str
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    smoke: bool = False
    started: float = field(default_factory=time.monotonic)
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def as_dict(self) -> dict[str, Any]:
        cpus = os.cpu_count() or 1
        load = max(self.load_before[0], os.getloadavg()[0])
        notes = list(self.notes)
        if load > cpus:
            notes.append(
                f"machine oversubscribed: 1-min load up to {load:.1f} on {cpus} cores, so this "
                f"run had roughly {cpus / load:.0%} of the CPU it would have alone"
            )
        return {
            "figure": self.figure,
            "title": self.title,
            "command": self.command,
            "smoke": self.smoke,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 2),
            "load": {"before": list(self.load_before), "after": list(os.getloadavg())},
            "machine": machine(),
            "versions": versions(),
            "params": self.params,
            "metrics": self.metrics,
            "targets": [t.as_dict() for t in self.targets],
            "notes": notes,
        }


def machine() -> dict[str, Any]:
    """The facts that make a figure comparable: cores, memory, CPU model, OS, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of ``pid`` (default: this process) from /proc."""
    path = Path(f"/proc/{pid or 'self'}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child_pids(pid: int | None = None) -> list[int]:
    """Direct children of ``pid`` (default: this process), from /proc."""
    me = pid or os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == me:
            out.append(int(stat.parent.name))
    return out


def tree_rss_bytes(pid: int | None = None) -> int:
    """RSS of ``pid`` (default: this process) plus its Python children: a lander and its decode
    process together (not the stack's JVMs or PostgreSQL, which a bench may have started)."""
    me = pid or os.getpid()
    total = 0
    with contextlib.suppress(OSError):
        total = rss_bytes(me)
        exe = os.path.realpath(f"/proc/{me}/exe")
        for child in child_pids(me):
            with contextlib.suppress(OSError):
                if os.path.realpath(f"/proc/{child}/exe") == exe:
                    total += rss_bytes(child)
    return total


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rows_differing(a: Any, b: Any) -> int:
    """How many rows two tables (pyarrow) do not share, duplicates counted (EXCEPT ALL both
    ways): 0 means the same content in any order. The figures' honesty checks use it."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("a", a)
        con.register("b", b)
        return int(
            con.execute(
                "SELECT (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b)) + "
                "(SELECT count(*) FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM a))"
            ).fetchone()[0]
        )
    finally:
        con.close()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def save(result: Result, results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``<results_dir>/<figure>.json`` (smoke runs write ``<figure>.smoke.json``)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    name = f"{result.figure}.smoke.json" if result.smoke else f"{result.figure}.json"
    path = results_dir / name
    path.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    return path


def load_all(results_dir: Path = RESULTS_DIR, *, smoke: bool = False) -> list[dict[str, Any]]:
    """Every saved result (full or smoke), in figure order."""
    pattern = "*.smoke.json" if smoke else "*.json"
    out = []
    order = {
        "P1": 1,
        "P2": 2,
        "P2@100": 2.5,
        "P3": 3,
        "P4": 4,
        "P5": 5,
        "P6": 6,
        "REF": 7,
        "REF-B": 8,
    }
    paths = sorted(
        results_dir.glob(pattern), key=lambda p: (order.get(p.name.split(".")[0], 99), p.name)
    )
    for p in paths:
        if not smoke and p.name.endswith(".smoke.json"):
            continue
        doc = json.loads(p.read_text())
        if isinstance(doc, dict) and {"figure", "targets", "metrics"} <= set(doc):
            out.append(doc)  # other tools' JSON that happens to live here is not a figure
    return out
