"""The ``retain`` operation: the only thing that deletes silver snapshots, and only old ones."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.silver import snapshots
from pipelines.silver.engine import LakeLike, as_table, lake_of

DEFAULT_KEEP_LAST = 5
DEFAULT_KEEP_EVERY_MIN = 60


def retain(
    settings_or_lake: LakeLike,
    table: QualifiedName | str | None = None,
    *,
    keep_last: int | None = None,
    keep_newer_than: datetime | None = None,
    keep_every: timedelta | None = None,
) -> dict[str, list[str]]:
    """Remove snapshots beyond the newest ``keep_last`` (default: setting
    ``CHANGELAKE_SILVER_KEEP_SNAPSHOTS``, else 5) that were created before ``keep_newer_than``,
    keeping one per ``keep_every`` of history (default: setting
    ``CHANGELAKE_SILVER_KEEP_EVERY_MINUTES``, else 60; zero keeps none). ``current`` is never
    removed. Returns removed snapshot ids per table. Time travel to instants older than the
    oldest kept snapshot still works, by replay from bronze."""
    lake = lake_of(settings_or_lake)
    keep_last, keep_every = policy(settings_or_lake, keep_last, keep_every)
    tables = [as_table(table)] if table is not None else snapshots.silver_tables(lake)
    return {
        str(t): snapshots.retain(
            lake, t, keep_last=keep_last, keep_newer_than=keep_newer_than, keep_every=keep_every
        )
        for t in tables
    }


def policy(
    settings_or_lake: LakeLike, keep_last: int | None, keep_every: timedelta | None
) -> tuple[int, timedelta]:
    """``keep_last`` and ``keep_every`` with their defaults filled in: the settings
    ``CHANGELAKE_SILVER_KEEP_SNAPSHOTS`` and ``CHANGELAKE_SILVER_KEEP_EVERY_MINUTES``, or
    for a bare lake path 5 and 60 minutes (the Iceberg silver's retention uses them too)."""
    is_settings = isinstance(settings_or_lake, Settings)
    if keep_last is None:
        keep_last = settings_or_lake.silver_keep_snapshots if is_settings else DEFAULT_KEEP_LAST
    if keep_every is None:
        minutes = (
            settings_or_lake.silver_keep_every_minutes if is_settings else DEFAULT_KEEP_EVERY_MIN
        )
        keep_every = timedelta(minutes=minutes)
    return keep_last, keep_every
