"""``publish_lake``: bring the lake's Iceberg tables up to date with bronze and silver.

One walk of the lake judges which bronze batches are complete (``bronze.layout``); then every
bronze table (captured tables, ``_transactions``, ``_notifications``) and every quarantined
topic (when no table is named) gets its unpublished batches appended (``bronze_publish``) and
every silver table its new snapshots
(``silver_publish``); then the DuckDB file over the tables is written again
(``duckdb_catalog``). Each table is exactly-once on its own, so a publish may be stopped,
killed or run twice at any point, by several processes at once; the next one goes on where the
tables say. The Parquet lake stays the source of truth: publishing only reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.bronze.layout import list_lake
from pipelines.bronze.reader import bronze_tables
from pipelines.config import Settings
from pipelines.iceberg.bronze_publish import (
    MAX_ROWS,
    bronze_source,
    publish_batches,
    quarantine_sources,
)
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.duckdb_catalog import catalog_path, write_iceberg_catalog
from pipelines.iceberg.published import Published
from pipelines.iceberg.rewrite import SmallFiles, small_files_for
from pipelines.iceberg.silver_publish import publish_silver
from pipelines.naming import QualifiedName
from pipelines.silver.snapshots import silver_tables


@dataclass
class PublishReport:
    tables: list[Published] = field(default_factory=list)
    seconds: float = 0.0
    catalog_file: Path | None = None  # the DuckDB file over the tables, when written

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def snapshots(self) -> int:
        return sum(len(t.snapshots) for t in self.tables)

    @property
    def bytes_written(self) -> int:
        return sum(t.bytes_written for t in self.tables)

    def per_layer(self) -> dict[str, tuple[int, int]]:
        """Layer -> (rows, snapshots) committed."""
        out: dict[str, tuple[int, int]] = {}
        for t in self.tables:
            rows, snaps = out.get(t.layer, (0, 0))
            out[t.layer] = (rows + t.rows, snaps + len(t.snapshots))
        return out


def publish_lake(
    settings: Settings,
    *,
    tables: Iterable[QualifiedName] | None = None,
    progress: Callable[[str], None] | None = None,
    max_rows: int = MAX_ROWS,
    small_files: SmallFiles | None = None,
) -> PublishReport:
    """Publish every bronze and silver table (or only ``tables``) to the lake's catalog."""
    started = time.monotonic()
    lake = settings.lake_root
    wanted = set(tables) if tables is not None else None
    catalog = open_catalog(settings)
    listing = list_lake(lake)
    micros = settings.iceberg_time_as_micros
    if small_files is None:
        small_files = small_files_for(settings)
    report = PublishReport()
    sources = [bronze_source(lake, t) for t in bronze_tables(lake)]
    if wanted is None:
        sources += quarantine_sources(lake)
    for source in sources:
        if wanted is not None and source.name not in wanted:
            continue
        if progress:
            progress(f"{source.layer} {source.name}")
        report.tables.append(
            publish_batches(
                catalog,
                source,
                listing,
                max_rows=max_rows,
                time_as_micros=micros,
                small_files=small_files,
            )
        )
    for qn in silver_tables(lake):
        if wanted is not None and qn not in wanted:
            continue
        if progress:
            progress(f"silver {qn}")
        report.tables.append(
            publish_silver(
                catalog,
                lake,
                qn,
                time_as_micros=micros,
                partition_bytes=settings.iceberg_silver_partition_bytes,
            )
        )
    changed = report.snapshots or any(t.expired for t in report.tables)
    if report.tables and (changed or not catalog_path(settings).exists()):
        report.catalog_file = write_iceberg_catalog(settings)
    report.seconds = time.monotonic() - started
    return report
