"""``changelake status``'s lake view when the lake is the Iceberg tables (``CHANGELAKE_LAKE_FORMAT=
iceberg``): the same ``LakeStatus`` document as the Parquet lake's (``pipelines.lakestatus``),
read from the catalog instead of the files.

- landed offsets: each topic's home table's committed positions (``landing``: where the lander
  resumes), so lag = Kafka's end offset - that position;
- bronze files and rows: the data files and ``total-records`` of the table's current snapshot;
- quarantined: the rows of ``quarantine.<topic>``;
- silver: the newest Iceberg silver snapshot with a watermark (``compaction``), its changelake
  snapshot id, rows and watermark.

Only metadata is read (snapshot summaries, manifests), never a data file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyiceberg.table import Table

from pipelines.bronze.layout import TRANSACTIONS
from pipelines.bronze.reader import BronzeTable
from pipelines.bronze.topics import bronze_topic, transaction_topic
from pipelines.config import Settings
from pipelines.decode.events import event_table
from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.names import BRONZE, QUARANTINE, SILVER
from pipelines.iceberg.silver_publish import SNAPSHOT_KEY
from pipelines.iceberg.sources import maybe_table
from pipelines.iceberg.timetravel import watermarked
from pipelines.lakestatus import (
    EndOffsets,
    LakeStatus,
    SilverStatus,
    TableStatus,
    lsn_text,
    partition_lags,
    total_lag,
)


def records(table: Table | None) -> tuple[int, int]:
    """(data files, rows) of the current snapshot, from its summary."""
    snapshot = table.current_snapshot() if table is not None else None
    summary = snapshot.summary if snapshot is not None else None
    if summary is None:
        return 0, 0
    return int(summary.get("total-data-files", 0)), int(summary.get("total-records", 0))


def table_records(settings: Settings, layer: str, name: BronzeTable | str) -> tuple[int, int]:
    """(data files, rows) of ``layer``'s table ``name`` now, from its current snapshot's
    summary ((0, 0) before the table exists): what the Dagster metadata and checks show."""
    catalog = open_catalog(settings, create_namespaces=False)
    return records(maybe_table(catalog, layer, name))


def _landed(table: Table | None, topic: str) -> dict[tuple[str, int], int]:
    if table is None:
        return {}
    return {(topic, p): n - 1 for p, n in off.resume_positions(table, topic).items()}


def silver_status(table: Table | None, now: datetime) -> SilverStatus | None:
    """The newest watermarked snapshot of Iceberg silver ``table`` (None: none yet)."""
    marks = watermarked(table) if table is not None else []
    if table is None or not marks:
        return None
    base = marks[-1]
    snapshot = table.snapshot_by_id(base.snapshot_id)
    summary = snapshot.summary if snapshot is not None else None
    rows = int(summary.get("total-records", 0)) if summary is not None else 0
    made = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC) if snapshot else now
    return SilverStatus(
        snapshot_id=(summary.get(SNAPSHOT_KEY) if summary is not None else None)
        or str(base.snapshot_id),
        rows=rows,
        watermark_lsn=base.watermark_lsn,
        watermark_lsn_text=lsn_text(base.watermark_lsn),
        watermark_ts=base.watermark_time.isoformat(),
        freshness_seconds=round((now - base.watermark_time).total_seconds(), 3),
        created_at=made.isoformat(),
    )


def iceberg_lake_status(
    settings: Settings, end_offsets: EndOffsets | None, *, now: datetime | None = None
) -> LakeStatus:
    """``lakestatus.lake_status`` for the Iceberg-stored lake (see the module)."""
    now = now or datetime.now(UTC)
    catalog = open_catalog(settings, create_namespaces=False)
    declared = [*settings.captured, *(event_table(a) for a in settings.event_aggregates)]

    def one(name: BronzeTable, topic: str, is_captured: bool, silver: bool) -> TableStatus:
        bronze = maybe_table(catalog, BRONZE, name)
        parts = partition_lags(topic, _landed(bronze, topic), end_offsets)
        lag = total_lag(parts, end_offsets)
        files, rows = records(bronze)
        now_silver = maybe_table(catalog, SILVER, name) if silver else None
        return TableStatus(
            table=str(name),
            captured=is_captured,
            topic=topic,
            lag=lag,
            partitions=parts,
            bronze_files=files,
            bronze_rows=rows,
            quarantined=records(maybe_table(catalog, QUARANTINE, topic))[1],
            silver=silver_status(now_silver, now) if silver else None,
        )

    tables = tuple(
        one(t, bronze_topic(settings, t), t in declared, silver=True) for t in settings.captured
    )
    tx = one(TRANSACTIONS, transaction_topic(settings), True, silver=False)
    return LakeStatus(
        root=settings.iceberg_warehouse_location,
        kafka_available=end_offsets is not None,
        generated_at=now.isoformat(),
        tables=tables,
        transactions=tx,
        quarantined=sum(t.quarantined for t in tables) + tx.quarantined,
    )
