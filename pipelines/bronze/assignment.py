"""Which partitions the lander reads and where it starts: from the lake, never the group.

Partitions are assigned explicitly (no group rebalancing) and each is positioned just past
the highest offset the lake (its ``store``) holds, so a crash between landing a batch and
committing group offsets cannot cause a duplicate or a gap.

Several landers can share the topics of a store that allows it (Iceberg): ``Member(i, n)``
takes the partitions ``(partition + crc32(topic)) % n == i``, so a topic's partitions spread
over the members and each member's share never changes while topics come and go.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

log = logging.getLogger(__name__)
Landed = Callable[[Sequence[str]], dict[tuple[str, int], int]]  # a store's ``landed``


@dataclass(frozen=True)
class Member:
    """Lander ``index`` of ``count`` sharing the topics (``0/1``: a lone lander)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"lander member {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Member:
        """``"i/n"`` (``CHANGELAKE_LANDER_MEMBER``); empty: a lone lander."""
        if not text.strip():
            return cls()
        i, sep, n = text.strip().partition("/")
        if not sep or not i.isdigit() or not n.isdigit():
            raise ValueError(f"lander member {text!r}: expected i/n, e.g. 0/2")
        return cls(int(i), int(n))

    def owns(self, topic: str, partition: int) -> bool:
        return (partition + zlib.crc32(topic.encode())) % self.count == self.index


def tp_name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


def assign_partitions(
    consumer: KafkaConsumer, topics: list[str], landed_of: Landed, member: Member = Member()
) -> list[TopicPartition]:
    """Assign ``member``'s partitions of ``topics``; seek past what the store already holds."""
    existing = consumer.topics()
    tps = []
    for topic in topics:
        if topic not in existing:
            log.info("topic %s does not exist (yet): skipped", topic)
            continue
        tps += [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic))
            if member.owns(topic, p)
        ]
    consumer.assign(tps)
    landed = landed_of([tp.topic for tp in tps])
    begin = consumer.beginning_offsets(tps) if tps else {}
    for tp in tps:
        last = landed.get((tp.topic, tp.partition))
        if last is None:
            consumer.seek(tp, begin[tp])
            continue
        if last + 1 < begin[tp]:
            log.warning(
                "%s: offsets %d..%d were deleted from Kafka before landing",
                tp_name(tp),
                last + 1,
                begin[tp] - 1,
            )
        consumer.seek(tp, max(last + 1, begin[tp]))
    return tps


def add_new_topics(
    consumer: KafkaConsumer,
    topics: list[str],
    tps: list[TopicPartition],
    landed_of: Landed,
    end: dict[TopicPartition, int],
    member: Member = Member(),
) -> list[TopicPartition]:
    """Continuous mode: start landing topics created since start (a table's first event)."""
    existing = consumer.topics()  # always a fresh metadata request
    have = {tp.topic for tp in tps}
    fresh = [
        t
        for t in topics
        if t in existing
        and t not in have
        and any(member.owns(t, p) for p in consumer.partitions_for_topic(t) or ())
    ]
    if not fresh:
        return tps
    positions = {tp: consumer.position(tp) for tp in tps}
    topics_now = sorted({tp.topic for tp in tps} | set(fresh))
    new_tps = assign_partitions(consumer, topics_now, landed_of, member)
    for tp, pos in positions.items():
        consumer.seek(tp, pos)  # reassignment must not move the partitions we already read
    end.update(consumer.end_offsets([tp for tp in new_tps if tp not in positions]))
    log.info("now landing new topic(s) %s", fresh)
    return new_tps
