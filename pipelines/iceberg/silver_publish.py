"""Publish silver to Iceberg: each silver snapshot becomes one Iceberg snapshot, in order.

A silver snapshot (``silver.snapshots``) is an immutable, transaction-consistent state of a
table at a watermark. Publishing replaces the Iceberg table ``silver.<table>`` with it in one
``overwrite`` commit whose summary records the silver snapshot id and its watermark
(``changelake.silver-snapshot``, ``changelake.watermark-lsn``, ``changelake.watermark-ts``),
so another engine's ``VERSION AS OF`` / ``TIMESTAMP AS OF`` reads exactly the states changelake
compacted, and ``iceberg_snapshot_for`` maps a changelake snapshot to its Iceberg one.

The table is partitioned by its key (``partitioning``), and a publish rewrites only the
partitions whose rows differ from the published state (the previous silver snapshot, read
from the lake), all in that one commit; a new partition spec, schema evolution or a
published state the lake no longer holds rewrites everything.

The states of one publish are the crash points: CHECKING (read the newest published id from
the table; this snapshot or a newer one is in: SKIPPED) -> STAGED (data files written, the
catalog not yet swapped: orphans, the retry writes again) -> COMMITTED (the id is in the
summary: the retry skips). A concurrent publisher that wins the swap makes this one refresh
and check again (pyiceberg's own retry is off, ``catalog``). Snapshots retention already
deleted are passed over: the next one holds the newer state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible
from pyiceberg.table import Table, Transaction

from pipelines.iceberg import partitioning
from pipelines.iceberg.catalog import conflict_backoff, ensure_table, load_table, set_properties
from pipelines.iceberg.commit import CommitState
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.evolve import evolve
from pipelines.iceberg.expiry import expire_silver
from pipelines.iceberg.names import SILVER
from pipelines.iceberg.offsets import newest_summary_value
from pipelines.iceberg.published import (
    Published,
    add_rows,
    added_bytes,
    crash_at_state,
    keep_key,
)
from pipelines.naming import QualifiedName
from pipelines.silver import snapshots
from pipelines.silver.compaction import SNAPSHOT_COMPRESSION
from pipelines.silver.snapshots import Manifest

SNAPSHOT_KEY = "changelake.silver-snapshot"
WATERMARK_LSN_KEY = "changelake.watermark-lsn"
WATERMARK_TS_KEY = "changelake.watermark-ts"
MAX_ATTEMPTS = 8
PARTITION_BYTES = 16 * 2**20  # Settings.iceberg_silver_partition_bytes
# silver is rewritten by every compaction, so its files are written as the lake's silver
# snapshots are (``silver.compaction.SNAPSHOT_COMPRESSION``: less CPU, larger files)
CODEC_PROPERTY = "write.parquet.compression-codec"


_Base = Callable[[str], "pa.Table | None"]  # a silver snapshot id -> its conformed rows


class PublishConflict(RuntimeError):
    """Concurrent publishers kept winning every attempt."""


class NotPartial(RuntimeError):
    """A state of only some partitions (``commit_state(only=...)``) cannot be committed as
    such: the schema or spec changed, or the table moved past the state it was computed on.
    The caller computes the whole state instead."""


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


def _replace(
    iceberg: Table,
    rows: pa.Table,
    summary: dict[str, str],
    rewrite: list | None,
    parts: pa.Array | None,
    *,
    partial: bool = False,
) -> tuple[Transaction, int, list | None]:
    """A transaction that replaces the data files of the partitions ``rewrite`` (None: all)
    with ``rows``' rows in them (``parts``: each row's partition value), in **one** snapshot;
    how many rows it writes, and the partitions it rewrites (None: all).

    pyiceberg's ``overwrite`` makes two (a delete, then an append), and the first is an empty
    table another engine could time-travel to; this stages one ``overwrite`` snapshot whose
    summary is ``summary``. ``_dataframe_to_data_files`` is pyiceberg's own writer (the one
    ``append`` uses), so files, statistics, partitions and field ids are written as pyiceberg
    writes them. ``partial``: ``rows`` hold only the partitions ``rewrite``, which must stay
    a subset (never all).
    """
    tx = iceberg.transaction()
    _check_pyarrow_schema_compatible(
        tx.table_metadata.schema(),
        provided_schema=rows.schema,
        format_version=tx.table_metadata.format_version,
    )
    tasks = list(iceberg.scan().plan_files())
    spec_id = iceberg.spec().spec_id
    if rewrite is not None and any(t.file.spec_id != spec_id for t in tasks):
        if partial:
            raise NotPartial("files of an older partition spec")
        rewrite = None  # files of an older spec: their partitions are not this spec's
    if rewrite is not None and parts is not None:
        if not (partial and _covers(rewrite, parts)):  # (a partial state often is all rewritten)
            rows = partitioning.rows_in(rows, parts, rewrite)
        wanted = set(rewrite)
        tasks = [t for t in tasks if t.file.partition[0] in wanted]
    with tx.update_snapshot(snapshot_properties=summary).overwrite() as replace:
        for task in tasks:
            replace.delete_data_file(task.file)
        if rows.num_rows:
            add_rows(tx, replace, rows, iceberg.io)
    return tx, rows.num_rows, rewrite


def _covers(rewrite: list, parts: pa.Array) -> bool:
    """Whether every row's partition (``parts``) is one of ``rewrite``."""
    return set(parts.unique().to_pylist()) <= set(rewrite)


@dataclass
class _Commit:
    """One publish's outcome: the new Iceberg snapshot (None: skipped), rows and partitions
    written (``rewritten`` None: every partition)."""

    snapshot_id: int | None = None
    rows: int = 0
    rewritten: int | None = None


def _partitions_to_rewrite(
    iceberg: Table, rows: pa.Table, parts: pa.Array | None, done: str | None, base: _Base
) -> list | None:
    """The partitions whose rows differ from the published state ``done`` (None: all)."""
    old = base(done) if done is not None else None
    if old is None or parts is None:
        return None
    return partitioning.changed(old, partitioning.partition_values(iceberg, old), rows, parts)


def _commit(
    iceberg: Table,
    rows: pa.Table,
    m: Manifest,
    base: _Base,
    *,
    full: bool,
    only: list | None = None,
) -> tuple[Table, _Commit]:
    """Overwrite ``iceberg`` with snapshot ``m`` unless it (or a newer one) is in; ``only``:
    ``rows`` are the state of just these partitions, computed on published snapshot
    ``m.parent``."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        iceberg.refresh()
        crash_at_state(CommitState.CHECKING)
        done = published_snapshot(iceberg)
        if done is not None and done >= m.snapshot_id:
            return iceberg, _Commit()  # SKIPPED
        if only is not None and (full or done != m.parent):
            raise NotPartial(f"silver {m.table}: published {done}, computed on {m.parent}")
        parts = None if full else partitioning.partition_values(iceberg, rows)
        rewrite = None if full else _partitions_to_rewrite(iceberg, rows, parts, done, base)
        if only is not None:  # the untouched partitions are not in rows: never rewrite them
            rewrite = list(only) if rewrite is None else [p for p in rewrite if p in set(only)]
        partial = only is not None
        tx, written, rewrite = _replace(iceberg, rows, _summary(m), rewrite, parts, partial=partial)
        crash_at_state(CommitState.STAGED)
        try:
            iceberg = tx.commit_transaction()
        except CommitFailedException:
            crash_at_state(CommitState.CONFLICT)
            conflict_backoff(attempt)
            continue
        crash_at_state(CommitState.COMMITTED)
        snapshot = iceberg.current_snapshot()
        sid = snapshot.snapshot_id if snapshot is not None else None
        return iceberg, _Commit(sid, written, None if rewrite is None else len(rewrite))
    raise PublishConflict(f"silver {m.table}: snapshot {m.snapshot_id} lost {MAX_ATTEMPTS} races")


def publish_silver(
    catalog: SqlCatalog,
    lake: Path,
    qn: QualifiedName,
    *,
    time_as_micros: bool = False,
    partition_bytes: int = PARTITION_BYTES,
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
    by_id = {m.snapshot_id: m for m in manifests}
    states: dict[str, pa.Table] = {}  # conformed states read this publish (the diff's base)

    def base(snapshot_id: str) -> pa.Table | None:
        if snapshot_id not in states and snapshot_id in by_id:
            raw = _rows(lake, qn, by_id[snapshot_id])
            if raw is not None:
                states[snapshot_id] = to_iceberg(raw, time_as_micros=time_as_micros)
        return states.get(snapshot_id)

    for m in manifests:
        if done is not None and m.snapshot_id <= done:
            continue
        rows = base(m.snapshot_id)
        if rows is None:
            continue  # retention removed it; a newer snapshot follows
        iceberg = commit_state(catalog, iceberg, qn, rows, m, base, report, partition_bytes)
        for old in [k for k in states if k < m.snapshot_id]:
            del states[old]  # only the newest state is a base from now on
        done = m.snapshot_id
    if iceberg is not None:  # history follows the lake's retention
        retained = {m.snapshot_id for m in snapshots.list_snapshots(lake, qn)}
        expired, deleted = expire_silver(iceberg, retained, SNAPSHOT_KEY)
        report.expired, report.files_deleted = len(expired), deleted
    if done is not None:
        report.detail = {"silver_snapshot": done}
    return report


def commit_state(
    catalog: SqlCatalog,
    iceberg: Table | None,
    qn: QualifiedName,
    rows: pa.Table,
    m: Manifest,
    base: _Base,
    report: Published,
    partition_bytes: int = PARTITION_BYTES,
    *,
    only: list | None = None,
) -> Table:
    """Make ``rows`` (silver state ``m``, in Iceberg's types) the table's current snapshot in
    one commit, rewriting only the partitions that differ from the state ``base`` gives for
    the published id; add what it did to ``report``. Creates the table if ``iceberg`` is None.

    ``only``: ``rows`` are the new state of just these partitions of the current spec (the
    others keep their rows), computed on snapshot ``m.parent``; raises ``NotPartial`` when
    that cannot be committed (schema evolution, a new spec, another snapshot published)."""
    if iceberg is None:
        iceberg = ensure_table(catalog, SILVER, qn, rows.schema)
    set_properties(iceberg, {CODEC_PROPERTY: SNAPSHOT_COMPRESSION})
    evolved = evolve(iceberg, rows.schema)
    report.changes += evolved
    keep_key(iceberg, m.key or None)
    want = partitioning.choose(iceberg, m.key or None, rows, partition_bytes)
    if only is not None and (evolved or want != partitioning.current(iceberg)):
        raise NotPartial(f"silver {qn}: the schema or the partitioning changes")
    respec = partitioning.apply(iceberg, want)
    iceberg, outcome = _commit(iceberg, rows, m, base, full=respec or bool(evolved), only=only)
    if outcome.snapshot_id is not None:
        report.rows += outcome.rows
        report.snapshots.append(outcome.snapshot_id)
        report.bytes_written += added_bytes(iceberg)
        report.partitions = _partition_count(iceberg)
        report.partitions_rewritten.append(
            report.partitions if outcome.rewritten is None else outcome.rewritten
        )
    return iceberg


def _partition_count(iceberg: Table) -> int:
    """Partitions of the current snapshot (1 when unpartitioned)."""
    if partitioning.current(iceberg) is None:
        return 1
    return len({task.file.partition[0] for task in iceberg.scan().plan_files()})
