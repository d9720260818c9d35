"""The metadata of a bronze landing or a silver compaction, in one place.

The assets report it on their materialisations and ``runless`` reports the very same for a
land or compact that ran outside Dagster (the CLI), so the UI shows one history either way.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.bronze.lander import LandingResult
from pipelines.bronze.topics import topic_for
from pipelines.config import Settings
from pipelines.defs.lakeview import summarize_parquet
from pipelines.defs.results import jsonable, result_metadata
from pipelines.naming import QualifiedName


def bronze_metadata(
    settings: Settings, table: QualifiedName, result: LandingResult
) -> dict[str, object]:
    """What a person wants to see for one table after a landing pass (the Iceberg lake: the
    bronze table's data files and rows from its current snapshot, no preview)."""
    topic = topic_for(settings, table)
    mine = {k: v for k, v in result.offsets.items() if k.rsplit("[", 1)[0] == topic}
    meta: dict[str, object] = {
        "events_landed": dg.MetadataValue.int(int(result.per_table.get(str(table), 0))),
        "topic": dg.MetadataValue.text(topic),
        "offsets_landed_this_pass": dg.MetadataValue.json(jsonable(mine)),
        "lag_after_pass": dg.MetadataValue.json(
            jsonable({k: v for k, v in result.lag.items() if k.rsplit("[", 1)[0] == topic})
        ),
        "pass_events_all_tables": dg.MetadataValue.int(result.events),
        "pass_files": dg.MetadataValue.int(result.files),
        "pass_quarantined": dg.MetadataValue.int(result.quarantined),
        "pass_tombstones": dg.MetadataValue.int(result.tombstones),
        "pass_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
    }
    if result.warnings:
        meta["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings[:20]))
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.lake_status import table_records
        from pipelines.iceberg.names import BRONZE

        data_files, rows = table_records(settings, BRONZE, table)
        meta["files_total"] = dg.MetadataValue.int(data_files)
        meta["dagster/row_count"] = dg.MetadataValue.int(rows)
        return meta
    from pipelines.bronze import files

    paths = list(files(settings.lake_root, table))
    meta["files_total"] = dg.MetadataValue.int(len(paths))
    meta.update(summarize_parquet(paths, order_by="_offset DESC NULLS LAST"))
    return meta


def current_files(settings: Settings, table: QualifiedName) -> list[Path]:
    """The Parquet files of the live silver snapshot (``silver.snapshots.current_files``)."""
    from pipelines.silver.snapshots import current_files as files

    return files(settings.lake_root, table)


def silver_metadata(settings: Settings, table: QualifiedName, result: object) -> dict[str, object]:
    """Compaction numbers plus row count, schema and preview of the new current snapshot (the
    Iceberg lake: the numbers and what its commit wrote)."""
    meta: dict[str, object] = dict(result_metadata(result, prefix="compaction_"))
    published = getattr(result, "published", None)
    if settings.lake_format == "iceberg":
        meta.pop("compaction_published", None)
        if published is not None:
            meta.update(result_metadata(published, prefix="iceberg_"))
        return meta
    meta.update(summarize_parquet(current_files(settings, table), order_by="_commit_lsn DESC"))
    return meta
