"""Immutable silver snapshots: layout, manifests, the atomic ``current`` flip, and retention.

``<lake>/silver/<schema>/<table>/snapshots/<id>/{part-0.parquet,manifest.json}`` and
``current -> snapshots/<id>``. A snapshot is built in a hidden temp directory and renamed into
place, then ``current`` is replaced by ``rename(2)`` of a fresh symlink, so a reader sees either
the old or the new snapshot, never a mix. Only ``retain`` deletes, and never ``current``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.durable import fsync_dir
from pipelines.naming import QualifiedName, from_path_segment

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds and how far into bronze it reaches.

    ``watermark_lsn``: every event with effective ``_commit_lsn`` <= it is applied, none after.
    ``watermark_ts``: the newest commit time applied (cumulative max), used by ``as_of`` to pick
    the newest snapshot that contains nothing committed after the requested instant.
    ``consumed``: bronze files (relative to the lake) whose every event is <= the watermark, so
    incremental compaction never reads them again.
    """

    snapshot_id: str
    table: str
    key: list[str]
    created_at: str
    parent: str | None
    watermark_lsn: int | None
    watermark_ts: str | None
    rows: int
    events_applied: int
    full: bool
    schema: list[dict[str, str]] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    consumed: list[str] = field(default_factory=list)

    @property
    def watermark_time(self) -> datetime | None:
        return datetime.fromisoformat(self.watermark_ts) if self.watermark_ts else None


def table_dir(lake: Path, table: QualifiedName) -> Path:
    return Path(lake) / "silver" / table.path


def silver_tables(lake: Path) -> list[QualifiedName]:
    """Every table of the lake that has a snapshot directory."""
    root = lake / "silver"
    if not root.is_dir():
        return []
    return [
        QualifiedName(from_path_segment(s.name), from_path_segment(t.name))
        for s in sorted(root.iterdir())
        if s.is_dir()
        for t in sorted(s.iterdir())
        if (t / "snapshots").is_dir()
    ]


def snapshot_dir(lake: Path, table: QualifiedName, snapshot_id: str) -> Path:
    return table_dir(lake, table) / "snapshots" / snapshot_id


def read_manifest(path: Path) -> Manifest:
    return Manifest(**json.loads((path / MANIFEST).read_text()))


def list_snapshots(lake: Path, table: QualifiedName) -> list[Manifest]:
    """Every finished snapshot of ``table``, oldest first (ids sort by sequence number)."""
    root = table_dir(lake, table) / "snapshots"
    if not root.is_dir():
        return []
    return [
        read_manifest(d)
        for d in sorted(root.iterdir())
        if not d.name.startswith(".") and (d / MANIFEST).is_file()
    ]


def current(lake: Path, table: QualifiedName) -> Manifest | None:
    """The manifest ``current`` points at, or None before the first compaction."""
    link = table_dir(lake, table) / "current"
    if not link.is_symlink():
        return None
    return read_manifest(table_dir(lake, table) / os.readlink(link))


def current_files(lake: Path, table: QualifiedName) -> list[Path]:
    """The Parquet files of the live snapshot (``current`` resolved once: a flip mid-read is
    harmless); none before the first compaction."""
    link = table_dir(lake, table) / "current"
    if not link.exists():
        return []
    return sorted(link.resolve().glob("*.parquet"))


def new_snapshot_id(parent: Manifest | None, now: datetime) -> str:
    return next_snapshot_id(parent.snapshot_id if parent else None, now)


def next_snapshot_id(parent_id: str | None, now: datetime) -> str:
    """The id after ``parent_id``: a sequence number, then the time (ids sort as they follow)."""
    seq = int(parent_id.split("-", 1)[0]) + 1 if parent_id else 1
    return f"{seq:010d}-{now.strftime('%Y%m%dT%H%M%S%fZ')}"


@contextmanager
def table_lock(lake: Path, table: QualifiedName) -> Iterator[None]:
    """One compaction/retention per table at a time (advisory ``flock``)."""
    d = table_dir(lake, table)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def staging_dir(lake: Path, table: QualifiedName, snapshot_id: str) -> Path:
    d = table_dir(lake, table) / "snapshots" / f".tmp-{snapshot_id}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def publish(lake: Path, table: QualifiedName, staging: Path, manifest: Manifest) -> Path:
    """Write the manifest, move the staged snapshot into place, and flip ``current`` to it."""
    (staging / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1))
    for p in staging.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    final = snapshot_dir(lake, table, manifest.snapshot_id)
    os.rename(staging, final)
    fsync_dir(final.parent)
    tdir = table_dir(lake, table)
    tmp_link = tdir / f".current-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(f"snapshots/{manifest.snapshot_id}", tmp_link)
    os.replace(tmp_link, tdir / "current")
    fsync_dir(tdir)
    return final


def kept_ids(
    snaps: Sequence[tuple[str, datetime | None]],
    *,
    keep_last: int,
    keep_every: timedelta | None = None,
) -> set[str]:
    """The retention rule, for the Parquet lake's snapshots and Iceberg silver's alike: of
    ``snaps`` (oldest first: id, watermark time), the newest ``keep_last`` and, with
    ``keep_every``, the newest of each such interval of watermark time."""
    if keep_last < 1:
        raise ValueError("keep_last must be >= 1 (current is always kept)")
    keep = {sid for sid, _ in snaps[-keep_last:]}
    if keep_every is not None and keep_every.total_seconds() > 0:
        newest_per_bucket: dict[int, str] = {}
        for sid, watermark in snaps:  # oldest first: a later snapshot of the interval wins
            if watermark is not None:
                newest_per_bucket[int(watermark.timestamp() // keep_every.total_seconds())] = sid
        keep |= set(newest_per_bucket.values())
    return keep


def retain(
    lake: Path,
    table: QualifiedName,
    *,
    keep_last: int,
    keep_newer_than: datetime | None = None,
    keep_every: timedelta | None = None,
) -> list[str]:
    """Delete old snapshots; keep ``current``, the newest ``keep_last``, any created after
    ``keep_newer_than``, and with ``keep_every`` the newest snapshot of each such interval of
    watermark time -- so ``as_of`` at any past instant starts from a snapshot at most about two
    intervals older, instead of replaying bronze from the start. Returns the removed ids.
    Removal renames first (readers listing snapshots never see a half-deleted one), then deletes."""
    removed: list[str] = []
    with table_lock(lake, table):
        snaps = list_snapshots(lake, table)
        cur = current(lake, table)
        keep = kept_ids(
            [(m.snapshot_id, m.watermark_time) for m in snaps],
            keep_last=keep_last,
            keep_every=keep_every,
        )
        if cur:
            keep.add(cur.snapshot_id)
        for m in snaps:
            created = datetime.fromisoformat(m.created_at)
            if m.snapshot_id in keep or (keep_newer_than and created > keep_newer_than):
                continue
            src = snapshot_dir(lake, table, m.snapshot_id)
            trash = src.parent / f".del-{m.snapshot_id}"
            os.rename(src, trash)
            shutil.rmtree(trash)
            removed.append(m.snapshot_id)
    return removed


def utcnow() -> datetime:
    return datetime.now(UTC)
