"""I5: P2 on the Iceberg lake: commit -> queryable through ``changelake run`` with
``CHANGELAKE_LAKE_FORMAT=iceberg``, the same workload and prober as P2 (``bench.freshness``).
A row counts as queryable when the silver view of the DuckDB file over the Iceberg tables shows
it: its transaction compacted into an Iceberg silver snapshot and the file rewritten."""

from __future__ import annotations

from bench import freshness
from bench.common import Result


def run(seconds: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    return freshness.run(
        seconds, smoke=smoke, command=command, progress=progress, lake_format="iceberg"
    )
