"""How far the Iceberg copy of the lake is behind it: the ``iceberg`` part of ``status``.

Per published folder of the lake: bronze and quarantine tables count the Kafka offsets of
complete batches not yet in the Iceberg table; silver tables count the lake's silver snapshots
newer than the one published. ``None`` when the lake has no catalog yet (nothing was ever
published, and ``status`` creates none).

    {catalog, warehouse, behind (tables with anything unpublished),
     tables: [{layer, table, published, offsets_behind | snapshots_behind, snapshot_id}]}

or ``{catalog, error, behind: null, tables: []}`` when the catalog database does not answer.
"""

from __future__ import annotations

from pathlib import Path

from pyiceberg.exceptions import NoSuchTableError
from sqlalchemy.exc import OperationalError

from pipelines.bronze.layout import LakeListing, list_lake
from pipelines.bronze.reader import bronze_tables
from pipelines.config import Settings
from pipelines.iceberg.bronze_publish import Source, batches_of, bronze_source, quarantine_sources
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.offsets import TopicPartition, committed_offsets
from pipelines.iceberg.silver_publish import published_snapshot
from pipelines.silver import snapshots


def has_catalog(settings: Settings) -> bool:
    uri = settings.iceberg_catalog_url
    if not uri.startswith("sqlite:///"):
        return True  # a shared catalog: ask it
    return Path(uri.removeprefix("sqlite:///").split("?")[0]).is_file()


def _current_id(table) -> int | None:  # noqa: ANN001
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


def _batches_row(catalog, source: Source, listing: LakeListing) -> dict:  # noqa: ANN001
    first: dict[TopicPartition, int] = {}  # per partition: the first landed offset
    ends: dict[TopicPartition, int] = {}  # and the position after the last complete batch
    for b in batches_of(source, listing):
        tp = TopicPartition(b.topic, b.partition)
        first[tp] = min(first.get(tp, b.first), b.first)
        ends[tp] = max(ends.get(tp, 0), b.last + 1)
    row = {"layer": source.layer, "table": str(source.name)}
    try:
        table = load_table(catalog, source.layer, source.name)
    except NoSuchTableError:
        reached: dict[TopicPartition, int] = {}
        row |= {"published": False, "snapshot_id": None}
    else:
        reached = committed_offsets(table)
        row |= {"published": True, "snapshot_id": _current_id(table)}
    row["offsets_behind"] = sum(
        max(0, end - reached.get(tp, first[tp])) for tp, end in ends.items()
    )
    return row


def _silver_row(catalog, lake: Path, qn) -> dict:  # noqa: ANN001
    ours = [m.snapshot_id for m in snapshots.list_snapshots(lake, qn)]
    row = {"layer": SILVER, "table": str(qn)}
    try:
        table = load_table(catalog, SILVER, qn)
    except NoSuchTableError:
        return row | {"published": False, "snapshot_id": None, "snapshots_behind": len(ours)}
    done = published_snapshot(table)
    behind = len([s for s in ours if done is None or s > done])
    return row | {"published": True, "snapshot_id": _current_id(table), "snapshots_behind": behind}


def publication_status(settings: Settings, listing: LakeListing | None = None) -> dict | None:
    """The ``iceberg`` part of ``status`` (see the module docstring)."""
    if not has_catalog(settings):
        return None
    lake = settings.lake_root
    try:
        catalog = open_catalog(settings, create_namespaces=False)
    except OperationalError as exc:  # status goes on without it, and says why
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return {
            "catalog": settings.iceberg_catalog_name,
            "error": reason,
            "behind": None,
            "tables": [],
        }
    listing = listing or list_lake(lake)
    sources = [bronze_source(lake, t) for t in bronze_tables(lake)] + quarantine_sources(lake)
    rows = [_batches_row(catalog, s, listing) for s in sources]
    rows += [_silver_row(catalog, lake, qn) for qn in snapshots.silver_tables(lake)]
    behind = sum(1 for r in rows if r.get("offsets_behind") or r.get("snapshots_behind"))
    return {
        "catalog": settings.iceberg_catalog_name,
        "warehouse": settings.iceberg_warehouse_location,
        "behind": behind,
        "tables": rows,
    }
