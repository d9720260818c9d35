"""Small-file rewrite of the append-only tables (bronze, quarantine).

Every publish appends at least one data file per table, so an always-on publish (every
minute) leaves thousands of small files, and every reader opens them all. When a table has
``min_files`` or more files under ``small_bytes``, they are read (through pyiceberg, so files
of older schemas come back in the current one) and written again as few files, at most
``max_input_bytes`` of input per commit.

Each rewrite is one ``overwrite`` snapshot that deletes the small files and adds the new ones
with the same rows; it copies the parent's ``changelake.offsets`` into its summary (and marks
itself ``changelake.rewrite``), so recovery reads the same positions from it. Its states are
the crash points: CHECKING (pick the files from the current snapshot) -> STAGED (new files
written, not committed: orphans, the table unchanged) -> COMMITTED. An append that commits
first makes the rewrite's commit fail (it asserts the snapshot it read); it refreshes and
picks again, so a rewrite never drops or repeats a row. The replaced files stay referenced by
older snapshots until expiry (``expiry``) deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import FileScanTask, Table

from pipelines.bronze.writer import crash_point
from pipelines.config import Settings
from pipelines.iceberg.catalog import conflict_backoff
from pipelines.iceberg.offsets import OFFSETS_KEY, newest_summary_value
from pipelines.iceberg.published import add_rows

REWRITE_KEY = "changelake.rewrite"
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class SmallFiles:
    """When and how much to rewrite."""

    small_bytes: int = 8 * 2**20  # a data file under this is small
    min_files: int = 16  # rewrite once a table has this many small files
    max_input_bytes: int = 128 * 2**20  # input per rewrite commit (memory: read at once)


DEFAULT_SMALL_FILES = SmallFiles()


def small_files_for(settings: Settings) -> SmallFiles | None:
    """The policy ``CHANGELAKE_ICEBERG_REWRITE_MIN_FILES`` / ``_SMALL_FILE_BYTES`` set (None:
    rewrites are off)."""
    if not settings.iceberg_rewrite_min_files:
        return None
    return SmallFiles(
        small_bytes=settings.iceberg_small_file_bytes,
        min_files=settings.iceberg_rewrite_min_files,
    )


@dataclass
class Rewritten:
    files_in: int = 0
    files_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    commits: int = 0


def _group(table: Table, policy: SmallFiles) -> list[FileScanTask]:
    """Small files of the current snapshot, up to the input limit (empty: too few)."""
    small = [t for t in table.scan().plan_files() if t.file.file_size_in_bytes < policy.small_bytes]
    if len(small) < policy.min_files:
        return []
    small.sort(key=lambda t: t.file.file_path)
    group, size = [], 0
    for task in small:
        if group and size + task.file.file_size_in_bytes > policy.max_input_bytes:
            break
        group.append(task)
        size += task.file.file_size_in_bytes
    return group if len(group) > 1 else []


def _rewrite_once(table: Table, policy: SmallFiles, report: Rewritten) -> bool:
    """One rewrite commit; False when there is nothing (left) to rewrite."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        table.refresh()
        crash_point("publish_rewrite_checking")
        group = _group(table, policy)
        if not group:
            return False
        meta = table.metadata
        rows = ArrowScan(meta, table.io, meta.schema(), AlwaysTrue()).to_table(group)
        summary = {REWRITE_KEY: "small-files"}
        offsets = newest_summary_value(table, OFFSETS_KEY)[1]
        if offsets is not None:
            summary[OFFSETS_KEY] = offsets
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties=summary).overwrite() as replace:
            for task in group:
                replace.delete_data_file(task.file)
            written = add_rows(tx, replace, rows, table.io)
        crash_point("publish_rewrite_staged")
        try:
            tx.commit_transaction()
        except CommitFailedException:
            conflict_backoff(attempt)
            continue
        crash_point("publish_rewrite_committed")
        report.files_in += len(group)
        report.bytes_in += sum(t.file.file_size_in_bytes for t in group)
        report.files_out += len(written)
        report.bytes_out += sum(written)
        report.commits += 1
        return True
    return False  # appends kept winning; the next publish tries again


def rewrite_small_files(table: Table, policy: SmallFiles = DEFAULT_SMALL_FILES) -> Rewritten:
    """Rewrite ``table``'s small files while there are ``policy.min_files`` of them."""
    report = Rewritten()
    while _rewrite_once(table, policy, report):
        pass
    return report
