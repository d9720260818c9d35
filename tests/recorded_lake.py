"""A lake built from the real connector's recorded messages (tests/fixtures/debezium): every
type of the type zoo, a keyless table, an int -> text column change, the transaction topic.

``land`` lands each partition's messages in ``parts`` batches through the lander's own
``land_batch``; ``compact_all`` compacts every zoo table into silver.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pipelines.bronze.lander import land_batch
from pipelines.bronze.topics import home_tables
from pipelines.config import Settings
from pipelines.decode import RawMessage
from pipelines.decode.replay import read_jsonl
from pipelines.naming import QualifiedName
from pipelines.silver.compaction import compact

RECORDED = Path(__file__).parent / "fixtures" / "debezium" / "typezoo.jsonl"
PREFIX = "zoo"
TABLES = tuple(QualifiedName("zoo", n) for n in ("typezoo", "keyless", "evolving", "precisions"))


def by_partition() -> dict[tuple[str, int], list[RawMessage]]:
    groups: dict[tuple[str, int], list[RawMessage]] = defaultdict(list)
    for m in read_jsonl(RECORDED):
        groups[(m.topic, m.partition)].append(m)
    return groups


def land(lake: Path, *, parts: int = 2, upto: float = 1.0) -> None:
    """Land the first ``upto`` fraction of every partition, in ``parts`` batches each."""
    for msgs in by_partition().values():
        msgs = msgs[: max(1, round(len(msgs) * upto))]
        size = max(1, -(-len(msgs) // parts))
        for i in range(0, len(msgs), size):
            land_batch(lake, msgs[i : i + size], topic_prefix=PREFIX)


def land_rest(lake: Path, *, after: float) -> None:
    """Land what ``land(upto=after)`` left out, as one more batch per partition."""
    for msgs in by_partition().values():
        rest = msgs[max(1, round(len(msgs) * after)) :]
        if rest:
            land_batch(lake, rest, topic_prefix=PREFIX)


def compact_all(lake: Path) -> None:
    for qn in TABLES:
        compact(lake, qn, catalog=False)


def zoo_settings(home: Path, **extra: object) -> Settings:
    """Settings whose captured tables and topic prefix are the recording's."""
    tables = ",".join(str(t) for t in TABLES)
    return Settings(_env_file=None, home=home, topic_prefix=PREFIX, tables=tables, **extra)


POISONED = f"{PREFIX}.zoo.evolving"  # with ``poison``, its first message made undecodable


def landed_batches(settings: Settings, parts: int, poison: bool = False) -> list[list[RawMessage]]:
    """The recording cut into ``parts`` batches per partition, of the topics a lander reads;
    ``poison``: the first message of ``POISONED`` is not JSON (its batch feeds quarantine and
    bronze: the fourth and fifth commits, after the transaction topic's three)."""
    homes = home_tables(settings)
    out = []
    for (topic, _), msgs in sorted(by_partition().items()):
        if topic not in homes:
            continue  # heartbeats: never landed
        if poison and topic == POISONED:
            m = msgs[0]
            msgs = [RawMessage(m.topic, 0, m.offset, m.timestamp_ms, m.key, b"{no"), *msgs[1:]]
        size = max(1, -(-len(msgs) // parts))
        out += [msgs[i : i + size] for i in range(0, len(msgs), size)]
    return out
