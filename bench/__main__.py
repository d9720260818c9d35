"""``python -m bench [--only P1,P3] [--events N] [--seconds S] [--smoke]``: run figures, save JSON, write RESULTS.md.

Each figure module has ``run(events, smoke=..., command=...) -> list[Result]``. Sizes default to
the targets' (5 M events for P1/P6, 10 M for P3-P5): about 50 minutes on 2 cores, most of it
producing the P1 backlog with kafka-python (kept for the next run) and building the 10 M-event
lake (cached under BENCH_DATA). ``--events`` or ``BENCH_EVENTS`` run smaller sizes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path

from bench.common import RESULTS_DIR, Result, save
from bench.lakegen import data_dir
from bench.report import RESULTS_MD, print_table, write_markdown

# figure id -> (module, default events, smoke events); one module may produce several figures
FIGURES: dict[str, tuple[str, int, int]] = {
    "P1": ("bench.landing", 5_000_000, 2_000),  # also P6 (same landing run): P6's 5 M backlog
    "P2": ("bench.freshness", 60, 8),  # seconds of workload
    "P3": ("bench.compaction", 10_000_000, 2_000),  # also P4
    "P5": ("bench.timetravel", 10_000_000, 2_000),
    "REF": ("bench.reference", 30, 5),  # seconds of pgbench
    "S1": ("bench.snapshot", 1_000_000, 2_000),  # rows of the table snapshotted incrementally
    "N1": ("bench.notification", 10_000, 300),  # thin events through each enrichment strategy
    "I1": ("bench.publish", 10_000_000, 2_000),  # the lake published to Iceberg
    "I2": ("bench.timetravel_iceberg", 10_000_000, 2_000),  # P5 on the Iceberg tables
    "I3": ("bench.iceberg_lake", 10_000_000, 2_000),  # P1's store, P3, P4 stored in Iceberg
    "I4": ("bench.landing_iceberg", 5_000_000, 2_000),  # P1 from Kafka into Iceberg
    "I5": ("bench.freshness_iceberg", 60, 8),  # P2 on the Iceberg lake (seconds of workload)
}
ALIASES = {"P4": "P3", "P6": "P1"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--only", default="", help="comma list of figures, e.g. P1,P3 (default: all)")
    ap.add_argument(
        "--events",
        type=int,
        default=int(os.environ.get("BENCH_EVENTS", "0")) or None,
        help="events for P1, P3-P6 (default per figure)",
    )
    ap.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("BENCH_SECONDS", "0")) or None,
        help="seconds of pgbench load for P2 and REF (default per figure)",
    )
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    ap.add_argument(
        "--no-stack",
        action="store_true",
        help="skip figures that need the private Kafka/PostgreSQL/Debezium stack",
    )
    ap.add_argument(
        "--keep-stack",
        action="store_true",
        help="leave the private stack running (default: stop and purge it after the run)",
    )
    return ap.parse_args(argv)


NEEDS_STACK = {"P1", "P2", "REF", "N1", "I4", "I5"}
TIMED = {"P2", "REF", "I5"}  # sized in seconds of load, not events


def selected(only: str) -> list[str]:
    if not only:
        return list(FIGURES)
    out = []
    for f in (x.strip().upper() for x in only.split(",") if x.strip()):
        f = ALIASES.get(f, f)
        if f not in FIGURES:
            raise SystemExit(f"unknown figure {f!r}; choose from {', '.join([*FIGURES, *ALIASES])}")
        if f not in out:
            out.append(f)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.smoke and args.results_dir == RESULTS_DIR:
        args.results_dir = (
            data_dir() / "smoke-results"
        )  # smoke runs never overwrite the real figures
    figures = selected(args.only)
    if args.no_stack:
        figures = [f for f in figures if f not in NEEDS_STACK]
    results: list[Result] = []
    failed = []
    for fig in figures:
        module, default, smoke_n = FIGURES[fig]
        timed = fig in TIMED
        n = (args.seconds if timed else args.events) or (smoke_n if args.smoke else default)
        flag = "--seconds" if timed else "--events"
        cmd = f"python -m bench --only {fig} {flag} {n}" + (" --smoke" if args.smoke else "")
        print(f"== {fig}: {module} ({n:,})", flush=True)
        try:
            mod = importlib.import_module(module)
            for r in mod.run(n, smoke=args.smoke, command=cmd):
                save(r, args.results_dir)
                results.append(r)
        except Exception:  # noqa: BLE001 - one broken figure must not hide the others
            traceback.print_exc()
            failed.append(fig)
    out = args.results_dir.parent / "RESULTS.md" if args.results_dir != RESULTS_DIR else RESULTS_MD
    if args.smoke:
        out = args.results_dir / "RESULTS.smoke.md"
    write_markdown(args.results_dir, out, smoke=args.smoke)
    print_table([r.as_dict() for r in results])
    print(f"results: {args.results_dir}  table: {out}")
    if not args.keep_stack and any(f in NEEDS_STACK for f in figures):
        from bench.stack import stop_stack, use_env_stack

        if not use_env_stack():  # never stop a stack the benchmarks did not start
            stop_stack(purge=True)
    if failed:
        print(f"FAILED figures: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
