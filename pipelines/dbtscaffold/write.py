"""Writing scaffold files: idempotent, and a file the user edited is kept unless ``force``.

Each file starts with a stamp line holding the hash of the rest of the file. A file whose
body still matches its stamp is scaffold's own and is brought up to date; one that differs
was edited and is kept (``force`` overwrites it). Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

STAMP = "changelake dbt scaffold: generated file, sha256 "
_COMMENT = {".sql": "-- ", ".py": "# ", ".yml": "# "}

# what happened to a file
WRITTEN, UPDATED, UNCHANGED, KEPT, OVERWRITTEN = (
    "written",
    "updated",
    "unchanged",
    "kept (edited; --force overwrites)",
    "overwritten (--force)",
)


@dataclass(frozen=True)
class FileResult:
    path: Path
    status: str


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def stamped(path: Path, body: str) -> str:
    """``body`` with its stamp line, as scaffold writes it to ``path``."""
    return f"{_COMMENT[path.suffix]}{STAMP}{_digest(body)}\n{body}"


def _edited(text: str) -> bool:
    first, _, body = text.partition("\n")
    return not (STAMP in first and first.rstrip().endswith(_digest(body)))


def write_file(path: Path, body: str, *, force: bool = False) -> FileResult:
    """Write ``body`` (stamped) to ``path`` unless it is there already or the user edited it."""
    new = stamped(path, body)
    try:
        old = path.read_text()
    except FileNotFoundError:
        old = None
    if old == new:
        return FileResult(path, UNCHANGED)
    if old is not None and _edited(old) and not force:
        return FileResult(path, KEPT)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
    if old is None:
        return FileResult(path, WRITTEN)
    return FileResult(path, OVERWRITTEN if _edited(old) else UPDATED)
