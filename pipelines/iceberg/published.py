"""What publishing one table to Iceberg did; what both publishers share (the key property,
the crash points of their commit states)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.table import Table, Transaction
from pyiceberg.table.update.snapshot import _OverwriteFiles

from pipelines.bronze.writer import crash_point
from pipelines.iceberg.catalog import set_properties
from pipelines.iceberg.commit import CommitState

KEY_PROPERTY = "changelake.key"  # the captured table's primary key, a JSON list of columns


@dataclass
class Published:
    layer: str
    table: str
    rows: int = 0
    snapshots: list[int] = field(default_factory=list)  # Iceberg snapshot ids committed
    bytes_written: int = 0  # data files added by those snapshots
    partitions: int = 0  # silver: partitions of the table after the last commit
    partitions_rewritten: list[int] = field(default_factory=list)  # silver: per snapshot
    changes: list[str] = field(default_factory=list)  # schema evolution
    small_files_rewritten: int = 0  # bronze: small data files replaced (rewrite.py)
    rewrite_files_written: int = 0  # bronze: the files that replaced them
    expired: int = 0  # Iceberg snapshots expired (expiry.py)
    files_deleted: int = 0  # data files only expired snapshots referenced
    detail: dict[str, str] = field(default_factory=dict)  # offsets / silver snapshot reached

    def rewritten(self) -> str:
        """What this publish rewrote: silver partitions per snapshot, bronze small files."""
        if self.partitions_rewritten:
            per = ", ".join(str(n) for n in self.partitions_rewritten)
            return f"{per} of {self.partitions} partition(s)"
        if self.small_files_rewritten:
            return f"{self.small_files_rewritten} small files -> {self.rewrite_files_written}"
        return ""


def keep_key(table: Table, key: list[str] | None) -> None:
    """Record ``key`` as the table's ``changelake.key`` (no commit when it is already)."""
    if key is None:
        return
    set_properties(table, {KEY_PROPERTY: json.dumps(key)})


def added_bytes(table: Table) -> int:
    """Bytes of data files the table's current snapshot added."""
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    value = summary.get("added-files-size") if summary is not None else None
    return int(value) if value else 0


def crash_at_state(state: CommitState) -> None:
    """Tests: ``CHANGELAKE_CRASH_AT=publish_<state>`` SIGKILLs a publisher entering ``state``."""
    crash_point(f"publish_{state.value}")


def add_rows(tx: Transaction, files: _OverwriteFiles, rows: pa.Table, io: FileIO) -> list[int]:
    """Write ``rows`` as data files of the snapshot ``files`` stages in ``tx`` (pyiceberg's own
    writer, the one ``append`` uses: statistics, partitions and field ids as pyiceberg writes
    them); the sizes of the files written."""
    sizes = []
    for data_file in _dataframe_to_data_files(
        table_metadata=tx.table_metadata, write_uuid=files.commit_uuid, df=rows, io=io
    ):
        files.append_data_file(data_file)
        sizes.append(data_file.file_size_in_bytes)
    return sizes
