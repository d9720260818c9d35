"""``python -m pipelines.bronze [--follow] [--max-seconds N]``: land once, print JSON.

A bare entry point (no rich, no typer) so crash tests can run the lander as a subprocess and
SIGKILL it at a ``CHANGELAKE_CRASH_AT`` point.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from pipelines.bronze.lander import land
from pipelines.bronze.progress import stop_on_signals
from pipelines.config import get_settings
from pipelines.naming import QualifiedName


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bronze")
    ap.add_argument("--follow", action="store_true", help="keep landing (until --max-seconds)")
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--table", action="append", default=None, help="schema.table (repeatable)")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tables = [QualifiedName.parse(t) for t in args.table] if args.table else None
    with stop_on_signals() as stop:  # SIGTERM/Ctrl-C: land what is in flight, then report
        result = land(
            get_settings(),
            tables=tables,
            max_seconds=args.max_seconds,
            until_caught_up=not args.follow,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
            stop=stop,
        )
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
