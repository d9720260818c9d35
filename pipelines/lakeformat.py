"""Compaction, the catalog file, the status view and the live silver rows in each lake format
(``CHANGELAKE_LAKE_FORMAT``), for the service's compact stage, the Dagster silver assets and
checks, and ``changelake status`` (the CLI's ``compact`` prints per format).

Parquet: ``silver.compact`` over the lake's files, then the lake's DuckDB catalog file.
Iceberg: ``iceberg.compaction`` over the Iceberg tables the lander commits to, then the DuckDB
file over those tables (``iceberg.duckdb_catalog``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.lakestatus import SilverStatus
from pipelines.naming import QualifiedName


def compact_table(settings: Settings, table: str, *, catalog: bool = False):  # noqa: ANN201
    """One table's compaction: a ``silver.CompactionResult`` or an ``iceberg.compaction.
    Compacted`` (both have ``changed``); LookupError when the table has no bronze yet.
    ``catalog``: rewrite the format's DuckDB catalog file when a snapshot changed."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg import compaction

        qn = QualifiedName.parse(table)
        if not compaction.has_bronze(settings, qn):
            raise LookupError(f"no Iceberg bronze for {qn} yet")
        result = compaction.compact(settings, qn)
        if catalog and result.changed:
            write_catalog(settings)
        return result
    from pipelines.silver import compact

    return compact(settings.lake_root, table, catalog=catalog)


def compact_tables(settings: Settings, tables=None) -> list:  # noqa: ANN001
    """Compact ``tables`` (default: every captured table with bronze), then write the catalog
    file once; the results of the tables that had bronze to compact."""
    if settings.lake_format != "iceberg":
        from pipelines.silver import compact, compact_all

        if tables is None:
            return compact_all(settings)
        return [compact(settings, str(t)) for t in tables]
    done = []
    for t in tables if tables is not None else settings.captured:
        try:
            done.append(compact_table(settings, str(t)))
        except LookupError:  # nothing landed for it yet
            continue
    write_catalog(settings)
    return done


def as_of(settings: Settings, table: QualifiedName | str, instant, **options):  # noqa: ANN001, ANN201
    """``table`` as committed at ``instant`` (a pyarrow table), from the lake's format: the
    same rule over the Parquet lake's or the Iceberg tables' snapshots and bronze."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.timetravel import as_of as iceberg_as_of

        qn = table if isinstance(table, QualifiedName) else QualifiedName.parse(table)
        return iceberg_as_of(settings, qn, instant, **options)
    from pipelines.silver import as_of as lake_as_of

    return lake_as_of(settings, table, instant, **options)


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the lake's format (Iceberg: its extensions loaded)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg import engine

        return engine.connect(settings)
    return duckdb.connect()


def versions_sql(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: QualifiedName, match: str = "TRUE"
) -> str:
    """The SQL of every version of the rows of ``table`` that ``match`` selects, by the one
    history rule over the lake's bronze (``silver.timetravel.versions_sql`` or
    ``iceberg.timetravel.versions_sql``), for ``con`` (``connect``). NoSilverData when nothing
    landed for it."""
    if settings.lake_format != "iceberg":
        from pipelines.silver.timetravel import versions_sql as lake_versions_sql

        return lake_versions_sql(con, settings.lake_root, table, match=match)
    from pipelines.iceberg.timetravel import table_versions_sql

    return table_versions_sql(con, settings, table, match)


def retain(settings: Settings, table: QualifiedName | None = None, **options) -> dict[str, list]:  # noqa: ANN003
    """Silver snapshot retention of ``table`` (default: every silver table) by the one rule
    (``silver.snapshots.kept_ids``), on the Parquet lake's snapshots or the Iceberg silver
    tables'; ``options``: ``keep_last``, ``keep_newer_than``, ``keep_every``. The removed
    snapshot ids per table (Iceberg: the expired Iceberg snapshot ids)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.retention import retain as iceberg_retain

        return iceberg_retain(settings, table, **options)
    from pipelines.silver import retain as lake_retain

    return lake_retain(settings, table, **options)


def remove_orphans(settings: Settings, *, older_than=None, delete: bool = True) -> list:  # noqa: ANN001
    """Delete the files no table metadata references (``iceberg.orphans``: left by commits
    killed or beaten mid-way) older than ``older_than`` (a timedelta; default
    ``CHANGELAKE_ICEBERG_ORPHAN_MIN_AGE_HOURS``): one ``OrphanReport`` per Iceberg table. The
    Parquet lake has none to sweep (its lander deletes its own temp files when it recovers):
    an empty list."""
    if settings.lake_format != "iceberg":
        return []
    from pipelines.iceberg.orphans import sweep_lake

    return sweep_lake(settings, older_than=older_than, delete=delete)


@dataclass
class Maintenance:
    """What one round of lake upkeep removed."""

    removed: dict[str, list] = field(default_factory=dict)  # silver table -> snapshot ids
    orphans: list = field(default_factory=list)  # ``OrphanReport`` per Iceberg table

    @property
    def snapshots(self) -> int:
        return sum(map(len, self.removed.values()))

    @property
    def orphan_files(self) -> int:
        return sum(r.deleted for r in self.orphans)


def maintain(
    settings: Settings,
    tables=None,  # noqa: ANN001 - QualifiedNames (default: every silver table)
    *,
    orphans_older_than=None,  # noqa: ANN001 - a timedelta (default: the setting)
    **options,  # noqa: ANN003 - ``retain``'s
) -> Maintenance:
    """The lake's upkeep in its one order (``run``'s maintain stage, the nightly Dagster job,
    ``changelake retain``): silver retention, then the catalog file (its macros offer only the
    snapshots left), then the orphan sweep."""
    done = Maintenance()
    for t in tables or [None]:
        done.removed.update(retain(settings, t, **options))
    write_catalog(settings)
    done.orphans = remove_orphans(settings, older_than=orphans_older_than)
    return done


def key_schema(settings: Settings, table: QualifiedName):  # noqa: ANN201
    """``table``'s primary-key columns and the schema of its landed bronze (a pyarrow
    schema), for typing key values from the command line."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.timetravel import key_schema as iceberg_key_schema

        return iceberg_key_schema(settings, table)
    import pyarrow.parquet as pq

    from pipelines.bronze import files, key_columns

    keys = key_columns(settings.lake_root, table)  # NoBronzeData: nothing landed yet
    return keys, pq.read_schema(files(settings.lake_root, table)[-1])


def history(settings: Settings, table: QualifiedName, values: list):  # noqa: ANN201
    """Every version of one row of ``table`` (a pyarrow table), from the lake's format."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.timetravel import history as iceberg_history

        return iceberg_history(settings, table, values)
    from pipelines.silver import history as lake_history

    return lake_history(settings, table, values)


def catalog_file(settings: Settings) -> Path:
    """The lake's DuckDB catalog file (views and the ``as_of_``/``history_`` macros)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.duckdb_catalog import catalog_path

        return catalog_path(settings)
    from pipelines.silver import catalog_path as lake_catalog_path

    return lake_catalog_path(settings)


def write_catalog(settings: Settings) -> None:
    """Rewrite the DuckDB catalog file of the lake's format."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.duckdb_catalog import write_iceberg_catalog

        write_iceberg_catalog(settings)
        return
    from pipelines.silver import write_catalog as write_lake_catalog

    write_lake_catalog(settings.lake_root)


def lake_status(settings: Settings, end_offsets):  # noqa: ANN001, ANN201
    """``changelake status``'s lake view (a ``lakestatus.LakeStatus``) in the lake's format;
    ``end_offsets`` from Kafka, None when it is down."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.lake_status import iceberg_lake_status

        return iceberg_lake_status(settings, end_offsets)
    from pipelines.lakestatus import lake_status as parquet_lake_status

    return parquet_lake_status(settings, end_offsets)


@contextmanager
def live_silver(
    settings: Settings, table: QualifiedName
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str | None]]:
    """A DuckDB connection and the relation (SQL) of ``table``'s live silver rows: the
    current Iceberg snapshot, or the files of the Parquet lake's ``current`` snapshot. The
    relation is None before the table's first compaction."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg import engine
        from pipelines.iceberg.catalog import open_catalog
        from pipelines.iceberg.names import SILVER
        from pipelines.iceberg.sources import maybe_table, scan

        silver = maybe_table(open_catalog(settings, create_namespaces=False), SILVER, table)
        with engine.connect(settings) as con:
            yield con, scan(silver) if silver is not None else None
        return
    from pipelines.silver.bronze_io import parquet_source
    from pipelines.silver.snapshots import current_files

    files = current_files(settings.lake_root, table)
    with duckdb.connect(":memory:") as con:
        yield con, parquet_source(files) if files else None


def silver_status(settings: Settings, table: QualifiedName) -> SilverStatus | None:
    """The live silver snapshot of ``table``: id, rows, watermark, when it was published."""
    now = datetime.now(UTC)
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.catalog import open_catalog
        from pipelines.iceberg.lake_status import silver_status as iceberg_silver
        from pipelines.iceberg.names import SILVER
        from pipelines.iceberg.sources import maybe_table

        catalog = open_catalog(settings, create_namespaces=False)
        return iceberg_silver(maybe_table(catalog, SILVER, table), now)
    from pipelines.lakestatus import silver_status as parquet_silver

    return parquet_silver(settings.lake_root, table, now)


def quarantined(settings: Settings, topic: str) -> tuple[int, str, list[str]]:
    """What was quarantined from ``topic``: (messages or files, where, a few examples)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.lake_status import table_records
        from pipelines.iceberg.names import QUARANTINE

        where = f"{QUARANTINE}.{topic} in {settings.iceberg_warehouse_location}"
        return table_records(settings, QUARANTINE, topic)[1], where, []
    from pipelines.bronze.layout import quarantine_dir

    qdir = quarantine_dir(settings.lake_root, topic)
    found = sorted(qdir.rglob("*.parquet")) if qdir.exists() else []
    return len(found), str(qdir), [f.name for f in found[:5]]
