"""Render saved results as the Markdown table (bench/RESULTS.md) and as a rich console table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, RESULTS_DIR, load_all

RESULTS_MD = BENCH_DIR / "RESULTS.md"


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _load(r: dict[str, Any]) -> str:
    return f"{r['load']['before'][0]:.1f}→{r['load']['after'][0]:.1f}"


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per target: figure, target, measured, met, size, load."""
    out = []
    for r in results:
        size = ", ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items())
        for t in r["targets"]:
            met = {True: "met", False: f"MISSED ({t['gap']})", None: "not measured"}[t["met"]]
            if t["op"] == "info":
                met = "reference (no target)"
            out.append(
                [
                    f"{r['figure']} {r['title']}",
                    t["name"],
                    "—" if t["op"] == "info" else f"{t['op']} {_fmt(t['threshold'])} {t['unit']}",
                    f"{_fmt(t['measured'])} {t['unit']}",
                    met,
                    size,
                    _load(r),
                ]
            )
    return out


HEADER = ["Figure", "Metric", "Target", "Measured", "Result", "Size", "Load 1-min"]


def markdown(results: list[dict[str, Any]]) -> str:
    """The whole RESULTS.md: the table, then per figure its command, numbers and notes."""
    if not results:
        return "# changelake benchmark results\n\nNo results yet: run `make bench`.\n"
    m = results[0]["machine"]
    v = results[0]["versions"]
    lines = [
        "# changelake benchmark results",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, {m['platform']}, "
        f"Python {m['python']}. Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        "The machine was SHARED with other engineers' builds and tests while these ran; the "
        "'Load 1-min' column is `os.getloadavg()` before→after each figure (2 cores: load 2 = busy).",
        "Regenerate with `make bench` (or the per-figure command below); raw numbers are in "
        "`bench/results/<figure>.json`.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows(results)]
    for r in results:
        lines += [
            "",
            f"## {r['figure']} {r['title']}",
            "",
            f"`{r['command']}` — {r['finished_at']}, {r['duration_s']} s",
            "",
        ]
        lines += [f"- {k}: {_fmt(x)}" for k, x in r["metrics"].items() if not isinstance(x, list)]
        lines += [f"- note: {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"


def write_markdown(
    results_dir: Path = RESULTS_DIR, out: Path = RESULTS_MD, *, smoke: bool = False
) -> Path:
    out.write_text(markdown(load_all(results_dir, smoke=smoke)))
    return out


def print_table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="changelake benchmarks")
    for h in HEADER:
        table.add_column(h)
    for row in rows(results):
        table.add_row(*row)
    Console().print(table)
