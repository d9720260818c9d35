"""What ``changelake down --purge`` deletes: everything the home holds except the jar cache.

A purge is a fresh start. PostgreSQL and Kafka are rebuilt from nothing by the next ``up`` (a
new Kafka cluster, offsets from 0), so a lake landed from the old cluster would be refused by
the lander (``LakeSourceMismatch``); the lake, the warehouse and the Dagster instance go too.
``keep_lake`` keeps the lake and the warehouse (then the lake must be moved away before landing
from the new cluster, and the report says so).

Safety rules:
* the jar cache ``HOME/jars`` is never touched, whatever it is (a directory or, in tests and
  private homes, a symlink to a shared cache);
* nothing is followed: a symlink in the home is removed as a link, its target is left alone,
  and ``shutil.rmtree`` does not descend into symlinked directories;
* a lake or warehouse configured OUTSIDE the home (``CHANGELAKE_LAKE``/``CHANGELAKE_WAREHOUSE``)
  is never deleted by a purge: it is reported as kept, with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import Settings
from pipelines.stack.layout import Layout
from pipelines.stack.procs import StackError


@dataclass
class PurgeReport:
    """``removed``: paths deleted (links as links); ``kept``: (path, why) worth telling."""

    removed: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)


def _inside(path: Path, home: Path) -> bool:
    return path == home or home in path.parents


def _lake_paths(settings: Settings) -> list[tuple[Path, str]]:
    """The lake, the warehouse (with DuckDB's WAL next to it) and the managed S3 endpoint's
    data, and the setting naming each."""
    wh = settings.warehouse_path
    return [
        (settings.lake_root, "CHANGELAKE_LAKE"),
        (wh, "CHANGELAKE_WAREHOUSE"),
        (wh.with_name(wh.name + ".wal"), "CHANGELAKE_WAREHOUSE"),
        # the managed S3 endpoint's buckets: an s3:// lake's files
        (Layout.of(settings).s3_data, "CHANGELAKE_ICEBERG_WAREHOUSE"),
    ]


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def _purge_dir(directory: Path, keep: set[Path], report: PurgeReport) -> None:
    """Delete every entry of ``directory`` except ``keep`` paths and the folders holding them."""
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = Path(entry.path)
        if path in keep:
            continue
        if entry.is_dir(follow_symlinks=False) and any(path in k.parents for k in keep):
            _purge_dir(path, keep, report)  # a kept path lies below: purge around it
            continue
        _remove(path)
        report.removed.append(path)


@contextmanager
def _no_lander(lake: Path) -> Iterator[None]:
    """Hold the lake's lander lock while purging (``StackError`` while a lander runs)."""
    if not lake.is_dir():
        yield
        return
    from pipelines.bronze.lander import LanderBusy, lake_lock  # bronze imports stack: late

    try:
        with lake_lock(lake):
            yield
    except LanderBusy as exc:
        raise StackError(f"{exc}: stop it before purging (nothing was deleted)") from exc


_STALE = "the next `land` refuses a lake landed from the old Kafka cluster: move it away first"


def purge(settings: Settings, *, keep_lake: bool = False) -> PurgeReport:
    """Delete the home's state (see the module doc); the stack must be stopped already.

    Raises ``StackError`` when a lander is writing to a lake the purge would delete."""
    layout = Layout.of(settings)
    home, lake = layout.home, settings.lake_root
    report = PurgeReport()
    keep = {layout.jars}
    for path, setting in _lake_paths(settings):
        inside = _inside(path, home)
        if inside and keep_lake:
            keep.add(path)
        if not path.exists() or path.name.endswith(".wal") or (inside and not keep_lake):
            continue
        why = "--keep-lake" if inside else f"outside {home} (set by {setting}): never purged"
        report.kept.append((path, f"{why}; {_STALE}" if path == lake else why))
    if home.is_dir():
        guard = _no_lander(lake) if _inside(lake, home) and not keep_lake else nullcontext()
        with guard:
            _purge_dir(home, keep, report)
    return report
