"""Kafka coordinates and the committed-offsets record kept in Iceberg snapshot summaries.

Every snapshot changelake commits to a table carries, in its summary, the complete map of
that table's committed Kafka positions: ``changelake.offsets`` =
``{"<topic>[<partition>]": <next offset to consume>, ...}`` (all partitions ever committed,
not only the batch's), so the newest such snapshot alone says where to resume. Offsets are
consumer positions, not record offsets: a compacted topic or a transaction marker leaves
gaps between records, and the next batch must start exactly where the last one ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from pyiceberg.table import Table

OFFSETS_KEY = "changelake.offsets"
COMMIT_ID_KEY = "changelake.commit-id"
BATCH_KEY = "changelake.batch"  # the ranges this snapshot's own rows came from

_TOPIC = re.compile(r"[A-Za-z0-9._\-]{1,249}")  # Kafka's legal topic names
_KEY = re.compile(r"(?P<topic>[A-Za-z0-9._\-]{1,249})\[(?P<partition>0|[1-9][0-9]*)\]")


class LostOffsets(RuntimeError):
    """A table has snapshots but no reachable one records committed offsets."""


@dataclass(frozen=True, order=True)
class TopicPartition:
    topic: str
    partition: int

    def __post_init__(self) -> None:
        if not _TOPIC.fullmatch(self.topic):
            raise ValueError(f"not a Kafka topic name: {self.topic!r}")
        if self.partition < 0:
            raise ValueError(f"negative partition {self.partition}")

    @property
    def key(self) -> str:
        return f"{self.topic}[{self.partition}]"

    @classmethod
    def parse(cls, key: str) -> TopicPartition:
        m = _KEY.fullmatch(key)
        if m is None:
            raise ValueError(f"not a topic[partition] key: {key!r}")
        return cls(m["topic"], int(m["partition"]))


@dataclass(frozen=True)
class OffsetRange:
    """Consumer positions ``[start, end)``: fetched from ``start``, next to fetch ``end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad offset range [{self.start}, {self.end})")


Offsets = dict[TopicPartition, int]


def encode(offsets: Offsets) -> str:
    return orjson.dumps({tp.key: n for tp, n in sorted(offsets.items())}).decode()


def decode(text: str) -> Offsets:
    raw = orjson.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{OFFSETS_KEY} is not a JSON object: {text[:80]!r}")
    out: Offsets = {}
    for key, n in raw.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{OFFSETS_KEY}: bad offset {n!r} for {key!r}")
        out[TopicPartition.parse(key)] = n
    return out


def encode_ranges(ranges: dict[TopicPartition, OffsetRange]) -> str:
    return orjson.dumps({tp.key: [r.start, r.end] for tp, r in sorted(ranges.items())}).decode()


def newest_summary_value(table: Table, key: str) -> tuple[bool, str | None]:
    """(table has snapshots, ``key`` of the newest snapshot of ``main`` that records it).

    Walks back through parents past snapshots other writers made without the key (a
    maintenance rewrite, say). (False, None): an empty table; (True, None): no reachable
    snapshot has it (expired ancestors).
    """
    snapshot = table.current_snapshot()
    if snapshot is None:
        return False, None
    while snapshot is not None:
        summary = snapshot.summary
        text = summary.get(key) if summary is not None else None
        if text is not None:
            return True, text
        if snapshot.parent_snapshot_id is None:
            break
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id)
    return True, None


def committed_offsets(table: Table) -> Offsets:
    """The table's committed positions, from the newest snapshot of ``main`` that has them.

    An empty table has none. Raises ``LostOffsets`` when the table has snapshots but none
    reachable records them: resuming from nothing would re-land the whole topic, so that is
    never guessed.
    """
    has_snapshots, text = newest_summary_value(table, OFFSETS_KEY)
    if not has_snapshots:
        return {}
    if text is None:
        raise LostOffsets(f"{'.'.join(table.name())}: no snapshot records {OFFSETS_KEY}")
    return decode(text)


def resume_positions(table: Table, topic: str) -> dict[int, int]:
    """Partition -> position to seek to for ``topic`` (partitions never committed are absent)."""
    return {tp.partition: n for tp, n in committed_offsets(table).items() if tp.topic == topic}
