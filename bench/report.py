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
        "Some figures were taken while the machine was shared with other builds and tests; the "
        "'Load 1-min' column is `os.getloadavg()` before→after each figure (2 cores: load 2 = busy).",
        "Regenerate with `make bench` (or the per-figure command below); raw numbers are in "
        "`bench/results/<figure>.json`. Stack figures (P1, P2, P6, REF) run on a private stack "
        "(`/tmp/bench-home`, own ports; stopped and purged afterwards unless `--keep-stack`). "
        "Synthetic events are generated from messages recorded from the real connector "
        "(`python -m bench.record` -> `bench/templates/bench_events.jsonl`).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows(results)]
    lines += why_missed({r["figure"]: r for r in results})
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


def _missed(r: dict[str, Any] | None) -> bool:
    return bool(r) and any(t["met"] is False for t in r["targets"])


def _short(entry: str) -> str:
    """'2.87 /x/site-packages/kafka/a.py:5(f)' -> 'kafka/a.py:5 f' (drop the time and prefix)."""
    where = entry.split(" ", 1)[-1]
    for cut in ("site-packages/", "/work/main/"):
        if cut in where:
            where = where.split(cut, 1)[1]
    return where.replace("(", " ").rstrip(")")


def _landing_profile(p1: dict[str, Any]) -> str:
    """The top functions of the landing profile, if one was taken (see bench.landing)."""
    for n in p1["notes"]:
        if n.startswith("profile landing"):
            names = [_short(e) for e in n.split(": ", 1)[1].split("; ")]
            return " (landing profile, top by own time: " + ", ".join(names[:4]) + ")"
    return ""


def _vs_source(landing: float, ref: dict[str, Any]) -> str:
    src = ref["metrics"]["debezium_events_per_s_overall"]
    return (
        f" For scale: Debezium itself emitted {src:,} events/s into Kafka on this machine "
        f"(REF-B); landing ran at {landing / src:.0%} of its source's rate."
    )


def why_missed(by: dict[str, dict[str, Any]]) -> list[str]:
    """The reasons behind missed targets, stated from the measured numbers."""
    out = ["", "## Why targets were missed", ""]
    p1, p2, p2b, p3, p5, ref = (by.get(k) for k in ("P1", "P2", "P2@100", "P3", "P5", "REF-B"))
    if _missed(p1):
        m = p1["metrics"]
        split = m.get("decode_process")
        how = (
            "Landing fetches with kafka-python in the lander's process while one child process "
            "decodes and writes, so the two use both cores; the fetch side is the same "
            "pure-Python record parsing as the baseline"
            if split
            else "Landing adds JSON parse, Arrow build, Parquet write and fsync on the same thread"
        )
        stages = m.get("stage_s")
        out.append(
            f"- **P1**: the baseline itself, a pure-Python kafka-python fetch, ran at "
            f"{m['raw_fetch_msgs_per_s']:,} msgs/s ({m['raw_fetch_mb_per_s']} MB/s) here, about "
            f"{m['raw_fetch_msgs_per_s'] * m['events_landed'] // max(p1['params']['messages'], 1):,}"
            " change events/s (a backlog also holds tombstones and BEGIN/END records), so no "
            "lander on this client can reach 50,000 events/s on this machine; its profile is "
            "record parsing (`default_records._read_msg`, `fetcher._unpack_records`, "
            f"`decode_varint`). {how}"
            + (f" (stage wall seconds: {stages})" if stages else _landing_profile(p1))
            + ". What would lift it: a C client (confluent-kafka/librdkafka) for the fetch, "
            "which moves record parsing out of Python, and cores of its own for Kafka."
            + (_vs_source(m["landing_events_per_s"], ref) if ref else "")
        )
    if _missed(p2):
        out.append(_freshness_missed("P2", p2, p2b, by, "the live view"))
    if _missed(p3):
        full = p3["params"]["events"] >= 10_000_000
        out.append(
            f"- **P3**: one DuckDB pass (threads=2, memory_limit=3GB as set by "
            f"`pipelines.silver.compaction.connect`) took {p3['metrics']['full_s']} s for "
            f"{p3['params']['events']:,} events ({p3['metrics']['events_per_s']:,} events/s); "
            + (
                "about two thirds of it is reading every event with the transaction-safe cut "
                "(a distinct count per transaction against its END), the rest picking the newest "
                "version per key and writing the snapshot."
                if full
                else "the 10 M figure is a linear projection, not a run."
            )
        )
    if _missed(by.get("P4")):
        m = by["P4"]["metrics"]
        out.append(
            f"- **P4**: the incremental run took {m['incremental_s']} s for "
            f"{m['events_applied']:,} new events: it reads the parent snapshot "
            f"({m['rows_out']:,} rows) and writes a new one whole, so its floor is one pass over "
            "the table, not over the change."
        )
    if _missed(p5):
        m = p5["metrics"]
        out.append(
            f"- **P5**: over {p5['params']['events']:,} events the snapshot route took "
            f"{m['as_of_snapshot_s']} s vs {m['as_of_replay_s']} s for a full replay "
            f"({m['speedup']}x), with one snapshot per tenth of the history. The snapshot "
            f"route reads the newest snapshot before the instant ({m['rows']:,} rows, one per "
            "key), applies the events after it (up to half a tenth of the history here) and "
            "returns every row; returning the whole table is itself a sizeable part. Replay "
            "cost grows with the history, the snapshot route's with the table and the tail, so "
            "denser snapshots (`changelake run` compacts after every landing that completes transactions; `retain` "
            "decides how many are kept) lower it."
        )
    out += _iceberg_notes(by)
    return out if len(out) > 3 else []


def _iceberg_notes(by: dict[str, dict[str, Any]]) -> list[str]:
    """I1-I3 (the Iceberg figures), stated from their numbers when a target was missed."""
    i1, i2, i3 = (by.get(k) for k in ("I1", "I2", "I3"))
    out = []
    if _missed(i2) and i1:
        a, b = i1["metrics"], i2["metrics"]
        mb = a["incremental_silver_bytes_rewritten"] / 1e6
        out.append(
            "- **I1/I2** (Iceberg): a silver publish rewrites only the key ranges whose rows "
            f"changed, so the +1 % publish rewrites {a['incremental_partitions_rewritten']} of "
            f"{a['silver_partitions']} ranges ({mb:.1f} MB of "
            f"{a['silver_table_bytes'] / 1e6:.1f} MB). `as_of` from Iceberg reads the base "
            "snapshot and only the bronze files after its watermark (Iceberg's column bounds on "
            f"`_commit_lsn`), {b['as_of_iceberg_snapshot_s']} s against the lake's "
            f"{b['as_of_lake_s']} s at P5's instant; its fixed costs (catalog, extension load, "
            f"metadata) are part of the gap. A replay reads every Iceberg bronze file "
            f"({b['as_of_iceberg_replay_s']} s)."
        )
    if _missed(i3):
        m = i3["metrics"]
        out.append(
            f"- **I3** (the lake stored in Iceberg): the full compaction took "
            f"{m['full_compaction_s']} s and the +1 % incremental one "
            f"{m['incremental_compaction_s']} s, which rewrote "
            f"{m['incremental_partitions_rewritten']} of {m['silver_partitions']} key ranges "
            "and read only that range of the start snapshot; what is left is reading the new "
            "events out of Iceberg bronze (about a third), pyiceberg writing the rewritten "
            "range (another third), the diff and the commit, against the Parquet lake's one "
            "pass over its snapshot file. "
            f"Landing: {m['landing_iceberg_events_s']:,} events/s decoded and committed to "
            f"Iceberg ({m['landing_iceberg_commits']} commits) against "
            f"{m['landing_parquet_events_s']:,} written as Parquet."
        )
    i4 = by.get("I4")
    if _missed(i4):
        m = i4["metrics"]
        out.append(
            f"- **I4** (P1 into Iceberg, {i4['params']['events']:,} events): the lander into "
            f"Iceberg landed {m['iceberg_events_per_s']:,} events/s against "
            f"{m['parquet_events_per_s']:,} into Parquet from the same backlog (raw fetch "
            f"{m['raw_fetch_msgs_per_s']:,} msgs/s); every batch is an Iceberg commit per table "
            "(about 45 ms), so a backlog's polls are merged into batches of 32 MiB first "
            f"(stage wall seconds: {m['stage_s']}). The fetch is P1's pure-Python client."
        )
    i5 = by.get("I5")
    if _missed(i5):
        view = "Iceberg silver's view (compacted and the DuckDB file rewritten)"
        out.append(_freshness_missed("I5", i5, by.get("I5@100"), by, view))
    return out


def _freshness_missed(fig: str, r: dict, at100: dict | None, by: dict, view: str) -> str:
    """Why a freshness figure (P2, or I5 on the Iceberg lake) missed, leg by leg."""
    m = r["metrics"]
    p95_met = next(t["met"] for t in r["targets"] if "p95" in t["name"])
    ref = by.get("REF")
    line = (
        f"- **{fig}**: pgbench (`-R`, a Poisson schedule, 4 clients) delivered "
        f"{m['achieved_tx_s']} of 1,000 tx/s with Debezium, `changelake run` and the prober "
        "sharing the same 2 cores"
        + (
            f" (in REF, without lander and compaction, one-row pgbench reached {ref['metrics']['pgbench_tps']:,} tx/s)"
            if ref
            else ""
        )
        + f"; commit->queryable p95 was {m['commit_to_queryable_p95_s']} s"
        + (" (met)" if p95_met else " (target 2 s)")
        + ". Where the time goes (p95 of each leg): Debezium, commit->Kafka "
        f"{m['debezium_p95_s']} s; landing, Kafka->bronze {m['landing_p95_s']} s; "
        f"visibility, bronze->seen in {view} {m['visibility_p95_s']} s (each probe "
        f"query took {m['probe_query_avg_s']} s on average)."
    )
    if at100:
        b = at100["metrics"]
        line += (
            f" At {at100['params']['target_rate_tx_s']} tx/s ({fig}@100) p95 is "
            f"{b['commit_to_queryable_p95_s']} s."
        )
    return line


README = BENCH_DIR.parent / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def readme_section(results: list[dict[str, Any]]) -> str:
    """The summary table and the reasons for missed targets, for the README."""
    text = markdown(results)
    body = text.split("\n## ", 1)[0]  # table part, before the per-figure details
    why = text.split("\n## Why targets were missed\n", 1)
    body = body.replace("# changelake benchmark results\n", "", 1).strip()
    if len(why) == 2:
        body += "\n\nWhy targets were missed:\n" + why[1].split("\n## ", 1)[0].rstrip()
    return body


def update_readme(results: list[dict[str, Any]], readme: Path = README) -> bool:
    """Replace the README's benchmark section (between the markers) with fresh figures."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    section = readme_section(results) + "\n\nDetails per figure: `bench/RESULTS.md`."
    readme.write_text(f"{head}{README_START}\n{section}\n{README_END}{tail}")
    return True


def write_markdown(
    results_dir: Path = RESULTS_DIR, out: Path = RESULTS_MD, *, smoke: bool = False
) -> Path:
    results = load_all(results_dir, smoke=smoke)
    out.write_text(markdown(results))
    if not smoke and out == RESULTS_MD:
        update_readme(results)  # `make bench` regenerates the README's table too
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
