"""Orphan files of the Iceberg tables: files under a table's location that no metadata the
table still has references, left by commits that died or lost (``commit``: a crash in STAGED
or a conflict writes data files and manifests no snapshot ever points at) and by expiry
interrupted between its metadata commit and its file deletes (``expiry``).

A file is **referenced** when the table's metadata names it: the current metadata file and
those in its metadata log, every snapshot's manifest list, every manifest of every snapshot,
every data and delete file of every snapshot (``inspect.all_files``), and the statistics
files. Everything else under the table's location is an orphan once it is older than
``older_than``: the age guard keeps the files of a commit in flight (written, not committed
yet) out of reach, as Iceberg's own ``remove_orphan_files`` does (its default is 3 days;
changelake's is ``CHANGELAKE_ICEBERG_ORPHAN_MIN_AGE_HOURS``, 24 h).

Files are listed and deleted through the table's own FileIO (pyarrow's filesystem for the
location, with the lake's S3 endpoint and credentials), so it works the same on a local folder
and on S3. Deleting an orphan changes no table state: every snapshot reads the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyarrow.fs import FileSelector, FileType
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from pipelines.config import Settings
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.names import NAMESPACES


@dataclass
class OrphanReport:
    """What one table's sweep found (paths as the FileIO spells them) and removed."""

    table: str
    listed: int = 0
    referenced: int = 0
    orphans: list[str] = field(default_factory=list)  # every unreferenced file old enough
    too_young: int = 0  # unreferenced but newer than the age guard: maybe a commit in flight
    bytes: int = 0  # of ``orphans``
    deleted: int = 0


def _path(io: PyArrowFileIO, location: str) -> str:
    """``location`` as the table's filesystem spells it (no scheme: ``bucket/key`` or an
    absolute local path), so referenced and listed files compare equal."""
    return io.parse_location(location, io.properties)[2]


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata names (see the module), as filesystem paths."""
    io, meta = table.io, table.metadata
    names = {table.metadata_location, *(e.metadata_file for e in meta.metadata_log)}
    names |= {s.manifest_list for s in meta.snapshots if s.manifest_list}
    if meta.snapshots:
        names |= set(table.inspect.all_manifests()["path"].to_pylist())
        names |= set(table.inspect.all_files()["file_path"].to_pylist())
    names |= {s.statistics_path for s in meta.statistics}
    names |= {s.statistics_path for s in meta.partition_statistics}
    return {_path(io, n) for n in names}


def sweep(table: Table, *, older_than: timedelta, delete: bool = True) -> OrphanReport:
    """Find (and with ``delete``, remove) the orphan files of ``table``."""
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise TypeError(f"orphan sweep needs pyiceberg's PyArrowFileIO, not {type(io).__name__}")
    report = OrphanReport(".".join(table.name()))
    scheme, netloc, root = io.parse_location(table.location(), io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    if fs.get_file_info(root).type is FileType.NotFound:
        return report
    table.refresh()  # the newest metadata: a file a concurrent commit just made live is kept
    keep = referenced_files(table)
    report.referenced = len(keep)
    cutoff = datetime.now(UTC) - older_than
    for info in fs.get_file_info(FileSelector(root, recursive=True)):
        if info.type is not FileType.File:
            continue
        report.listed += 1
        if info.path in keep:
            continue
        mtime = info.mtime
        if mtime is not None and mtime.replace(tzinfo=mtime.tzinfo or UTC) > cutoff:
            report.too_young += 1
            continue
        report.orphans.append(info.path)
        report.bytes += info.size or 0
    if delete:
        for path in report.orphans:
            fs.delete_file(path)
            report.deleted += 1
    return report


def sweep_lake(
    settings: Settings, *, older_than: timedelta | None = None, delete: bool = True
) -> list[OrphanReport]:
    """``sweep`` every table of every namespace of the lake's catalog; ``older_than`` defaults
    to ``CHANGELAKE_ICEBERG_ORPHAN_MIN_AGE_HOURS``."""
    age = older_than
    if age is None:
        age = timedelta(hours=settings.iceberg_orphan_min_age_hours)
    catalog = open_catalog(settings)
    out = []
    for ns in NAMESPACES:
        for ident in sorted(catalog.list_tables(ns)):
            out.append(sweep(catalog.load_table(ident), older_than=age, delete=delete))
    return out
