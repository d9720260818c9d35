"""Which partitions the lander reads and where it starts: from the lake, never the group.

Each partition is positioned just past the highest offset the lake (its ``store``) holds, so
a crash between landing a batch and committing group offsets cannot cause a duplicate or a
gap. A lone lander assigns itself every partition.

Several landers can share the topics of a store that allows it (Iceberg), two ways
(``CHANGELAKE_LANDER_MEMBER``):

- ``i/n`` (static): ``Member(i, n)`` takes the partitions ``(partition + crc32(topic)) % n
  == i``, so a topic's partitions spread over the members and each member's share never
  changes while topics come and go; a member that stays down leaves its share unlanded.
- ``group``: the landers join the consumer group and Kafka's coordinator splits the
  partitions among the live ones (``GroupMembership``); a lander killed or stopped hands its
  partitions to the others, one started later takes a share. Before giving partitions up a
  lander lands what it holds in flight; a lander that lost them without knowing it (paused
  past the session timeout) cannot duplicate either: every commit checks the table's offsets
  (``pipelines.iceberg.commit``), so the later of two commits of the same offsets skips them.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from pipelines.config import Settings

log = logging.getLogger(__name__)
Landed = Callable[[Sequence[str]], dict[tuple[str, int], int]]  # a store's ``landed``


class InvalidMember(ValueError):
    """``CHANGELAKE_LANDER_MEMBER`` is not ``i/n`` (0 <= i < n) or ``group``."""


@dataclass(frozen=True)
class Member:
    """Lander ``index`` of ``count`` sharing the topics (``0/1``: a lone lander), or a member
    of the consumer group (``group``: Kafka decides the share)."""

    index: int = 0
    count: int = 1
    group: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise InvalidMember(f"lander member {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Member:
        """``"i/n"`` or ``"group"`` (``CHANGELAKE_LANDER_MEMBER``); empty: a lone lander."""
        text = text.strip()
        if not text:
            return cls()
        if text == "group":
            return cls(group=True)
        i, sep, n = text.partition("/")
        if not sep or not i.isdigit() or not n.isdigit():
            raise InvalidMember(f"lander member {text!r}: expected i/n (e.g. 0/2) or group")
        return cls(int(i), int(n))

    @property
    def shares(self) -> bool:
        """Whether other landers share the topics (the store must allow it)."""
        return self.group or self.count > 1

    def owns(self, topic: str, partition: int) -> bool:
        return (partition + zlib.crc32(topic.encode())) % self.count == self.index


def group_id(settings: Settings, member: Member) -> str:
    """The lander's consumer group. Its offsets are only shown as lag, except for ``group``
    members, which the group splits partitions between: that group is the lake's own (its
    catalog and warehouse, the password left out), so landers of two lakes fed by the same
    topics never split one lake's partitions with the other."""
    base = f"{settings.topic_prefix}-bronze-lander"
    if not member.group:
        return base
    from sqlalchemy.engine import make_url

    catalog = make_url(settings.iceberg_catalog_url).set(password=None)
    lake = f"{catalog.render_as_string()}|{settings.iceberg_warehouse_location}"
    return f"{base}-{hashlib.sha256(lake.encode()).hexdigest()[:12]}"


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
    seek_past_landed(consumer, tps, landed_of)
    return tps


def seek_past_landed(consumer: KafkaConsumer, tps: list[TopicPartition], landed_of: Landed) -> None:
    """Position each of ``tps`` just past the highest offset the store holds (or at the
    beginning of what Kafka still has)."""
    landed = landed_of(sorted({tp.topic for tp in tps}))
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


class GroupMembership(ConsumerRebalanceListener):
    """``CHANGELAKE_LANDER_MEMBER=group``: the partitions the group coordinator gives this
    lander. kafka-python calls the listener on its IO thread, where no blocking consumer call
    may run, so the callbacks only note the new assignment (``changed``); after that poll the
    lander lands what it holds in flight, drops the poll's records (they were fetched from
    the group's offsets) and ``settle`` positions every partition it now holds just past what
    the store holds, the other landers' commits included."""

    def __init__(self, consumer: KafkaConsumer, landed_of: Landed) -> None:
        self.consumer, self.landed_of = consumer, landed_of
        self.tps: list[TopicPartition] = []
        self.changed = False
        self.rebalances = 0

    def subscribe(self, topics: list[str]) -> None:
        """Join the group for ``topics``; partitions come with the polls that follow."""
        self.consumer.subscribe(topics=topics, listener=self)

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        gone = set(revoked)
        self.tps = [tp for tp in self.tps if tp not in gone]
        self.changed = True

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.tps = sorted(assigned)
        self.changed = True
        self.rebalances += 1

    def settle(self) -> list[TopicPartition]:
        """Position the partitions now held past what the store holds; they are returned."""
        self.changed = False
        seek_past_landed(self.consumer, self.tps, self.landed_of)
        log.info("group assigned %d partition(s): %s", len(self.tps), list(map(tp_name, self.tps)))
        return list(self.tps)


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
