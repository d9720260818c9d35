"""What a running ``changelake run`` leaves in the lake for others to see.

* ``<lake>/.run.lock``: held (``flock``) for the service's lifetime: one ``run`` per lake. The
  file also names the holder's pid, so a second ``run``, the Dagster landing sensor and
  ``status`` can say who holds it. The kernel drops the lock when the process dies, SIGKILL too.
* ``<lake>/.run-status.json``: the service's figures and stage health, rewritten atomically a
  few times a minute; ``changelake status`` prints it while the lock is held.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = ".run.lock"
STATUS = ".run-status.json"


class AlreadyRunning(RuntimeError):
    """Another ``changelake run`` serves this lake."""


@contextmanager
def run_lock(lake: Path) -> Iterator[None]:
    """Hold the lake's run lock, or raise ``AlreadyRunning`` naming the holder."""
    lake.mkdir(parents=True, exist_ok=True)
    with open(lake / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise AlreadyRunning(
                f"changelake run (pid {holder}) already serves the lake {lake}"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            (lake / STATUS).unlink(missing_ok=True)


def running_pid(lake: Path) -> int | None:
    """The pid of the ``run`` serving ``lake``, or None when none does."""
    path = lake / LOCK
    if not path.exists():
        return None
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def write_status(lake: Path, doc: dict) -> None:
    """Replace the status document atomically (readers never see half of it)."""
    tmp = lake / f".{STATUS}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(doc, default=str, indent=1))
    os.replace(tmp, lake / STATUS)


def read_status(lake: Path) -> dict | None:
    """The running service's status document; None when no ``run`` serves the lake."""
    if running_pid(lake) is None:
        return None
    try:
        return json.loads((lake / STATUS).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
