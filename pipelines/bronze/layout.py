"""Where bronze files live and what their names mean.

The lake itself is the record of what has landed (not the Kafka consumer group), so every
file name carries the Kafka coordinates of the batch that wrote it:

    <topic_seg>-p<partition>-o<first:020d>-<last:020d>.<k>of<n>.<ext>

``first``/``last`` are the offsets of the whole consumed batch of one topic-partition, ``n`` is
how many files that batch wrote in all (bronze tables x commit dates, transactions, quarantine).
A batch is landed only when all ``n`` files exist.  A batch that produced no rows at all (only
tombstones) writes one empty marker ``<lake>/_landed/<topic_seg>/<name>.1of1.landed`` so its
offsets still count as landed.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipelines.contract import COMMIT_DATE
from pipelines.naming import QualifiedName, from_path_segment, path_segment

BRONZE = "bronze"
QUARANTINE = "quarantine"
LANDED = "_landed"
TRANSACTIONS = "_transactions"
NOTIFICATIONS = "_notifications"  # Debezium's snapshot-progress notifications
DATE_PARTITION = COMMIT_DATE

_NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9_%\-]+)-p(?P<partition>\d+)"
    r"-o(?P<first>\d{20})-(?P<last>\d{20})\.(?P<k>\d+)of(?P<n>\d+)\.(?P<ext>parquet|landed)$"
)


@dataclass(frozen=True, order=True)
class BatchId:
    """One consumed batch of one topic-partition: the unit that lands all-or-nothing."""

    topic: str
    partition: int
    first: int
    last: int

    def file_name(self, k: int, n: int, ext: str = "parquet") -> str:
        """The deterministic name of the k-th of n files of this batch."""
        return (
            f"{path_segment(self.topic)}-p{self.partition}"
            f"-o{self.first:020d}-{self.last:020d}.{k}of{n}.{ext}"
        )


@dataclass(frozen=True)
class LakeFile:
    """A parsed lake file name."""

    path: Path
    batch: BatchId
    k: int
    n: int


def parse_file(path: Path) -> LakeFile | None:
    """Parse a lake file name; ``None`` for anything that is not one (temp files, junk)."""
    m = _NAME.match(path.name)
    if m is None:
        return None
    batch = BatchId(
        from_path_segment(m["topic"]), int(m["partition"]), int(m["first"]), int(m["last"])
    )
    return LakeFile(path, batch, int(m["k"]), int(m["n"]))


def table_dir(lake: Path, table: QualifiedName | str) -> Path:
    """``<lake>/bronze/<schema_seg>/<table_seg>``, ``<lake>/bronze/_transactions`` or
    ``<lake>/bronze/_notifications``."""
    if isinstance(table, QualifiedName):
        return lake / BRONZE / table.path
    if table in (TRANSACTIONS, NOTIFICATIONS):
        return lake / BRONZE / table
    raise ValueError(
        f"expected a QualifiedName, {TRANSACTIONS!r} or {NOTIFICATIONS!r}, got {table!r}"
    )


def quarantine_dir(lake: Path, topic: str) -> Path:
    return lake / QUARANTINE / path_segment(topic)


def marker_dir(lake: Path, topic: str) -> Path:
    return lake / LANDED / path_segment(topic)


def walk(root: Path) -> list[Path]:
    """Every regular file under ``root`` (missing root: none), without following links."""
    out: list[Path] = []
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False):
                out.append(Path(e.path))
    return out


@dataclass
class LakeListing:
    """All lake files grouped by batch, split into complete and incomplete batches."""

    complete: dict[BatchId, list[LakeFile]]
    incomplete: dict[BatchId, list[LakeFile]]
    temp_files: list[Path]


def list_lake(lake: Path) -> LakeListing:
    """Group every bronze, quarantine and marker file by batch; judge completeness.

    Completeness needs the whole lake, since one batch's files span tables and dates.
    """
    groups: dict[BatchId, list[LakeFile]] = defaultdict(list)
    temps: list[Path] = []
    for root in (lake / BRONZE, lake / QUARANTINE, lake / LANDED):
        for p in walk(root):
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                temps.append(p)
                continue
            f = parse_file(p)
            if f is not None:
                groups[f.batch].append(f)
    complete: dict[BatchId, list[LakeFile]] = {}
    incomplete: dict[BatchId, list[LakeFile]] = {}
    for batch, fs in groups.items():
        ns = {f.n for f in fs}
        ks = {f.k for f in fs}
        ok = len(ns) == 1 and ks == set(range(1, next(iter(ns)) + 1))
        (complete if ok else incomplete)[batch] = fs
    return LakeListing(complete, incomplete, temps)
