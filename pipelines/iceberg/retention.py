"""``retain`` for Iceberg silver: the lake's retention rule over its Iceberg snapshots.

Of a silver table's watermarked snapshots (``silver_publish``'s summary: changelake snapshot
id, watermark time), the ones ``silver.snapshots.kept_ids`` keeps stay: the newest
``CHANGELAKE_SILVER_KEEP_SNAPSHOTS`` and the newest of each ``CHANGELAKE_SILVER_KEEP_EVERY_MINUTES``
of watermark time, plus any committed after ``keep_newer_than``; the others are expired with
the data files only they referenced (``expiry.expire_silver``). So ``as_of`` at a past instant
starts from a snapshot at most about two intervals older, as on the Parquet lake, and another
engine's ``VERSION AS OF`` offers the same states. Every compaction applies it to its table;
``changelake retain`` applies it with the options given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyiceberg.table import Table

from pipelines.config import Settings
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.expiry import expire_silver
from pipelines.iceberg.names import SILVER, from_table_name
from pipelines.iceberg.silver_publish import SNAPSHOT_KEY, WATERMARK_TS_KEY
from pipelines.iceberg.sources import maybe_table
from pipelines.naming import QualifiedName
from pipelines.silver.retention import policy
from pipelines.silver.snapshots import kept_ids


def retain_table(
    silver: Table,
    *,
    keep_last: int,
    keep_every: timedelta | None,
    keep_newer_than: datetime | None = None,
) -> tuple[list[int], int]:
    """Expire the snapshots of ``silver`` the rule does not keep: (expired ids, files deleted)."""
    snaps = sorted(silver.snapshots(), key=lambda s: (s.sequence_number or 0, s.timestamp_ms))
    marked: list[tuple[str, datetime | None]] = []
    keep: set[str] = set()
    for s in snaps:
        summary = s.summary
        sid = summary.get(SNAPSHOT_KEY) if summary is not None else None
        if sid is None:
            continue  # not a compaction's snapshot: expire_silver drops it
        ts = summary.get(WATERMARK_TS_KEY)
        marked.append((sid, datetime.fromisoformat(ts) if ts else None))
        made = datetime.fromtimestamp(s.timestamp_ms / 1000, UTC)
        if keep_newer_than is not None and made > keep_newer_than:
            keep.add(sid)
    if not marked:
        return [], 0
    keep |= kept_ids(marked, keep_last=keep_last, keep_every=keep_every)
    return expire_silver(silver, keep, SNAPSHOT_KEY)


def retain(
    settings: Settings,
    table: QualifiedName | None = None,
    *,
    keep_last: int | None = None,
    keep_newer_than: datetime | None = None,
    keep_every: timedelta | None = None,
) -> dict[str, list[int]]:
    """``silver.retain`` on the Iceberg silver tables (default: every one): the expired Iceberg
    snapshot ids per table."""
    keep_last, keep_every = policy(settings, keep_last, keep_every)
    catalog = open_catalog(settings)
    names = (
        [table]
        if table is not None
        else [from_table_name(ident[-1]) for ident in sorted(catalog.list_tables(SILVER))]
    )
    out: dict[str, list[int]] = {}
    for name in names:
        silver = maybe_table(catalog, SILVER, name)
        if silver is not None:
            out[str(name)] = retain_table(
                silver, keep_last=keep_last, keep_every=keep_every, keep_newer_than=keep_newer_than
            )[0]
    return out
