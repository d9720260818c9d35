"""Publish silver to Iceberg: each silver snapshot becomes one Iceberg snapshot, in order.

A silver snapshot (``silver.snapshots``) is an immutable, transaction-consistent state of a
table at a watermark. Publishing replaces the Iceberg table ``silver.<table>`` with it in one
``overwrite`` commit whose summary records the silver snapshot id and its watermark
(``changelake.silver-snapshot``, ``changelake.watermark-lsn``, ``changelake.watermark-ts``),
so another engine's ``VERSION AS OF`` / ``TIMESTAMP AS OF`` reads exactly the states changelake
compacted, and ``iceberg_snapshot_for`` maps a changelake snapshot to its Iceberg one.

The states of one publish are the crash points: CHECKING (read the newest published id from
the table; this snapshot or a newer one is in: SKIPPED) -> STAGED (data files written, the
catalog not yet swapped: orphans, the retry writes again) -> COMMITTED (the id is in the
summary: the retry skips). A concurrent publisher that wins the swap makes this one refresh
and check again (pyiceberg's own retry is off, ``catalog``). Snapshots retention already
deleted are passed over: the next one holds the newer state.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files
from pyiceberg.table import Table, Transaction

from pipelines.iceberg.catalog import conflict_backoff, ensure_table, load_table
from pipelines.iceberg.commit import CommitState
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.evolve import evolve
from pipelines.iceberg.expiry import expire_silver
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.offsets import newest_summary_value
from pipelines.iceberg.published import Published, added_bytes, crash_at_state, keep_key
from pipelines.naming import QualifiedName
from pipelines.silver import snapshots
from pipelines.silver.snapshots import Manifest

SNAPSHOT_KEY = "changelake.silver-snapshot"
WATERMARK_LSN_KEY = "changelake.watermark-lsn"
WATERMARK_TS_KEY = "changelake.watermark-ts"
MAX_ATTEMPTS = 8


class PublishConflict(RuntimeError):
    """Concurrent publishers kept winning every attempt."""


def published_snapshot(table: Table) -> str | None:
    """The newest silver snapshot id published to ``table`` (None: none yet)."""
    return newest_summary_value(table, SNAPSHOT_KEY)[1]


def iceberg_snapshot_for(table: Table, silver_snapshot_id: str) -> int | None:
    """The Iceberg snapshot id that holds changelake silver snapshot ``silver_snapshot_id``."""
    for s in table.snapshots():
        if s.summary is not None and s.summary.get(SNAPSHOT_KEY) == silver_snapshot_id:
            return s.snapshot_id
    return None


def _rows(lake: Path, qn: QualifiedName, m: Manifest) -> pa.Table | None:
    """The snapshot's rows, or None when retention deleted it meanwhile."""
    folder = snapshots.snapshot_dir(lake, qn, m.snapshot_id)
    try:
        parts = sorted(folder.glob("*.parquet"))
        if not parts:
            return None if not folder.is_dir() else pa.table({})
        return pa.concat_tables(
            [pq.ParquetFile(p).read() for p in parts], promote_options="permissive"
        )
    except FileNotFoundError:
        return None


def _summary(m: Manifest) -> dict[str, str]:
    out = {SNAPSHOT_KEY: m.snapshot_id}
    if m.watermark_lsn is not None:
        out[WATERMARK_LSN_KEY] = str(m.watermark_lsn)
    if m.watermark_ts is not None:
        out[WATERMARK_TS_KEY] = m.watermark_ts
    return out


def _replace(iceberg: Table, rows: pa.Table, summary: dict[str, str]) -> Transaction:
    """A transaction that replaces every data file with ``rows`` in **one** snapshot.

    pyiceberg's ``overwrite`` makes two (a delete, then an append), and the first is an empty
    table another engine could time-travel to; this stages one ``overwrite`` snapshot whose
    summary is ``summary``. ``_dataframe_to_data_files`` is pyiceberg's own writer (the one
    ``append`` uses), so files, statistics and field ids are written as pyiceberg writes them.
    """
    tx = iceberg.transaction()
    _check_pyarrow_schema_compatible(
        tx.table_metadata.schema(),
        provided_schema=rows.schema,
        format_version=tx.table_metadata.format_version,
    )
    with tx.update_snapshot(snapshot_properties=summary).overwrite() as replace:
        for task in iceberg.scan().plan_files():
            replace.delete_data_file(task.file)
        if rows.num_rows:
            for data_file in _dataframe_to_data_files(
                table_metadata=tx.table_metadata,
                write_uuid=replace.commit_uuid,
                df=rows,
                io=iceberg.io,
            ):
                replace.append_data_file(data_file)
    return tx


def _commit(iceberg: Table, rows: pa.Table, m: Manifest) -> tuple[Table, int | None]:
    """Overwrite ``iceberg`` with snapshot ``m`` unless it (or a newer one) is in; the table
    and the new Iceberg snapshot id (None: skipped)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        iceberg.refresh()
        crash_at_state(CommitState.CHECKING)
        done = published_snapshot(iceberg)
        if done is not None and done >= m.snapshot_id:
            return iceberg, None  # SKIPPED
        tx = _replace(iceberg, rows, _summary(m))
        crash_at_state(CommitState.STAGED)
        try:
            iceberg = tx.commit_transaction()
        except CommitFailedException:
            crash_at_state(CommitState.CONFLICT)
            conflict_backoff(attempt)
            continue
        crash_at_state(CommitState.COMMITTED)
        snapshot = iceberg.current_snapshot()
        return iceberg, snapshot.snapshot_id if snapshot is not None else None
    raise PublishConflict(f"silver {m.table}: snapshot {m.snapshot_id} lost {MAX_ATTEMPTS} races")


def publish_silver(
    catalog: SqlCatalog, lake: Path, qn: QualifiedName, *, time_as_micros: bool = False
) -> Published:
    """Publish ``qn``'s silver snapshots newer than the table's published one, oldest first."""
    report = Published(SILVER, str(qn))
    manifests = snapshots.list_snapshots(lake, qn)
    if not manifests:
        return report
    try:
        iceberg: Table | None = load_table(catalog, SILVER, qn)
        done = published_snapshot(iceberg)
    except NoSuchTableError:
        iceberg, done = None, None
    for m in manifests:
        if done is not None and m.snapshot_id <= done:
            continue
        rows = _rows(lake, qn, m)
        if rows is None:
            continue  # retention removed it; a newer snapshot follows
        rows = to_iceberg(rows, time_as_micros=time_as_micros)
        if iceberg is None:
            iceberg = ensure_table(catalog, SILVER, qn, rows.schema)
        report.changes += evolve(iceberg, rows.schema)
        keep_key(iceberg, m.key or None)
        iceberg, snapshot_id = _commit(iceberg, rows, m)
        if snapshot_id is not None:
            report.rows += rows.num_rows
            report.snapshots.append(snapshot_id)
            report.bytes_written += added_bytes(iceberg)
        done = m.snapshot_id
    if iceberg is not None:  # history follows the lake's retention
        retained = {m.snapshot_id for m in snapshots.list_snapshots(lake, qn)}
        expired, deleted = expire_silver(iceberg, retained, SNAPSHOT_KEY)
        report.expired, report.files_deleted = len(expired), deleted
    if done is not None:
        report.detail = {"silver_snapshot": done}
    return report
