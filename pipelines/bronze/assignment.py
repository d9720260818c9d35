"""Which partitions the lander reads and where it starts: from the lake, never the group.

Partitions are assigned explicitly (no group rebalancing) and each is positioned just past
the highest offset the lake holds, so a crash between writing files and committing group
offsets cannot cause a duplicate or a gap.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from pipelines.bronze.reader import landed_offsets

log = logging.getLogger(__name__)


def tp_name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


def assign_partitions(
    consumer: KafkaConsumer, topics: list[str], lake: Path
) -> list[TopicPartition]:
    """Assign every partition of ``topics`` and seek past what the lake already holds."""
    existing = consumer.topics()
    tps = []
    for topic in topics:
        if topic not in existing:
            log.info("topic %s does not exist (yet): skipped", topic)
            continue
        tps += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(tps)
    landed = landed_offsets(lake)
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
    lake: Path,
    end: dict[TopicPartition, int],
) -> list[TopicPartition]:
    """Continuous mode: start landing topics created since start (a table's first event)."""
    existing = consumer.topics()  # always a fresh metadata request
    fresh = [t for t in topics if t in existing and all(tp.topic != t for tp in tps)]
    if not fresh:
        return tps
    positions = {tp: consumer.position(tp) for tp in tps}
    new_tps = assign_partitions(consumer, sorted({tp.topic for tp in tps} | set(fresh)), lake)
    for tp, pos in positions.items():
        consumer.seek(tp, pos)  # reassignment must not move the partitions we already read
    end.update(consumer.end_offsets([tp for tp in new_tps if tp not in positions]))
    log.info("now landing new topic(s) %s", fresh)
    return new_tps
