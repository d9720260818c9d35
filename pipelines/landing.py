"""The lander for the configured lake format, and ``python -m pipelines.landing``.

``land`` runs ``bronze.lander.land`` with the store ``CHANGELAKE_LAKE_FORMAT`` names: the
Parquet lake's files, or the Iceberg tables (``pipelines.iceberg.landing``). The CLI, the
service and the Dagster asset call it; it sits above both ``bronze`` and ``iceberg`` so neither
imports the other's way round.

``python -m pipelines.landing [--follow] [--max-seconds N]``: land once, print JSON. A bare
entry point (no rich, no typer) so crash tests can run the lander as a subprocess and SIGKILL
it at a ``CHANGELAKE_CRASH_AT`` point.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pipelines.bronze import lander
from pipelines.bronze.batch import LandingResult
from pipelines.bronze.progress import stop_on_signals
from pipelines.bronze.store import Store
from pipelines.bronze.topics import home_tables
from pipelines.config import Settings, get_settings
from pipelines.naming import QualifiedName


def store_for(settings: Settings, tables: Sequence[QualifiedName] | None = None) -> Store | None:
    """The store of ``settings.lake_format`` (None: the lander's default, the Parquet lake)."""
    if settings.lake_format != "iceberg":
        return None
    from pipelines.iceberg.landing import IcebergStore

    return IcebergStore(settings, home_tables(settings, tables))


def land(
    settings: Settings, *, tables: Sequence[QualifiedName] | None = None, **options: Any
) -> LandingResult:
    """``bronze.lander.land`` into the configured lake format (same options)."""
    return lander.land(settings, tables=tables, store=store_for(settings, tables), **options)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.landing")
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
