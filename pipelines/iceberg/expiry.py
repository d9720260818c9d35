"""Snapshot expiry of the published tables: Iceberg metadata stays small, silver's history
follows the lake's retention.

- **silver**: an Iceberg snapshot whose silver snapshot the lake no longer has (``changelake
  retain`` removed it) is expired, and the data files only expired snapshots referenced are
  deleted; so ``VERSION AS OF`` offers exactly the states the lake's ``as_of`` starts from.
- **bronze and quarantine**: all but the newest ``keep_last`` snapshots are expired. Bronze is
  append-only, so the current snapshot references every row; the only data files expiry
  deletes are the small ones a rewrite (``rewrite``) replaced, once no kept snapshot
  references them. Without rewrites it is metadata only (an always-on publish commits every
  minute), and the file comparison is not made.

Expiry is a metadata commit; file deletion follows it: the manifest lists and manifests only
the expired snapshots referenced, always (pyiceberg's expiry deletes none), and the data files
as said above. A crash between the two leaves files no snapshot references (orphans, which
``orphans`` sweeps), never a snapshot without its files. The current snapshot (the
one whose summary carries the table's offsets or silver snapshot id) is never expired.
"""

from __future__ import annotations

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation

from pipelines.iceberg.catalog import retry_on_conflict

KEEP_BRONZE_SNAPSHOTS = 50


def _metadata_files(table: Table) -> set[str]:
    """The manifest lists and manifests the table's snapshots reference."""
    lists = {s.manifest_list for s in table.metadata.snapshots if s.manifest_list}
    if not lists:
        return set()
    return lists | set(table.inspect.all_manifests()["path"].to_pylist())


def _expire(table: Table, ids: list[int]) -> list[int]:
    """Expire ``ids`` (never the current snapshot), then delete the manifest lists and
    manifests only they referenced: pyiceberg's expiry deletes no file, so without this
    every commit of an always-on lander would leave one manifest list behind. A concurrent
    commit builds on the current snapshot, whose manifests stay referenced."""
    before: set[str] = set()

    def step() -> list[int]:
        nonlocal before
        current = table.current_snapshot()
        live = [i for i in ids if table.snapshot_by_id(i) is not None]
        live = [i for i in live if current is None or i != current.snapshot_id]
        if live:
            before = _metadata_files(table)
            table.maintenance.expire_snapshots().by_ids(live).commit()
        return live

    expired = retry_on_conflict(table, step)
    if expired:
        table.refresh()
        for path in sorted(before - _metadata_files(table)):
            table.io.delete(path)
    return expired


def expire_appended(table: Table, keep_last: int = KEEP_BRONZE_SNAPSHOTS) -> tuple[list[int], int]:
    """Expire all but the newest ``keep_last`` snapshots of an append-only table; delete the
    files rewrites replaced that no kept snapshot references. Returns (expired ids, files
    deleted)."""
    if keep_last < 1:
        raise ValueError("keep_last must be >= 1")
    snapshots = sorted(table.snapshots(), key=lambda s: (s.sequence_number, s.timestamp_ms))
    gone = [s.snapshot_id for s in snapshots[:-keep_last]]
    if not gone:
        return [], 0
    if all(s.summary is None or s.summary.operation == Operation.APPEND for s in snapshots):
        return _expire(table, gone), 0
    return _expire_deleting(table, gone)


def expire_silver(table: Table, retained: set[str], key: str) -> tuple[list[int], int]:
    """Expire the snapshots whose summary ``key`` (the silver snapshot id) is not ``retained``;
    delete the data files no remaining snapshot references. Returns (expired ids, files
    deleted)."""
    gone = [
        s.snapshot_id
        for s in table.snapshots()
        if s.summary is not None and s.summary.get(key) not in retained
    ]
    if not gone:
        return [], 0
    return _expire_deleting(table, gone)


def _expire_deleting(table: Table, gone: list[int]) -> tuple[list[int], int]:
    """Expire ``gone``, then delete the data files only they referenced."""
    before = set(table.inspect.all_data_files()["file_path"].to_pylist())
    expired = _expire(table, gone)
    if not expired:
        return [], 0
    table.refresh()
    after = (
        set(table.inspect.all_data_files()["file_path"].to_pylist()) if table.snapshots() else set()
    )
    unreferenced = sorted(before - after)
    for path in unreferenced:
        table.io.delete(path)
    return expired, len(unreferenced)
