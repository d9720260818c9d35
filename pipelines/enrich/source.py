"""Reading thin notifications from Kafka (``<prefix>.message``), one bounded chunk at a time.

``chunks`` is a generator: the consumer fetches the next chunk only when the enrichment asks
for it, so a slow enrichment (429s, backoff) holds the consumer back instead of piling events
up in memory (backpressure). Offsets are explicit (``[start, end)`` per partition): the Dagster
sensor's cursor, or a benchmark's window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pipelines.config import Settings
from pipelines.contract import message_topic
from pipelines.decode import RawMessage

Offsets = dict[int, int]  # partition -> offset


def end_offsets(settings: Settings) -> Offsets:
    """The message topic's end offset per partition (empty if the topic does not exist yet)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = message_topic(settings)
    consumer = KafkaConsumer(**settings.kafka_client_options(), enable_auto_commit=False)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts]) if parts else {}
        return {tp.partition: int(off) for tp, off in ends.items()}
    finally:
        consumer.close()


def chunks(
    settings: Settings,
    start: Mapping[int, int],
    end: Mapping[int, int],
    *,
    max_records: int = 1000,
    timeout_s: float = 60.0,
) -> Iterator[list[RawMessage]]:
    """Records of the message topic in ``[start, end)`` per partition, ``max_records`` at a time.
    Raises TimeoutError if Kafka does not deliver the window within ``timeout_s`` of silence."""
    from kafka import KafkaConsumer, TopicPartition

    topic = message_topic(settings)
    todo = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    if not todo:
        return
    consumer = KafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        max_poll_records=max_records,
        fetch_max_bytes=settings.max_message_bytes,
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    try:
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        for p, (s, _) in todo.items():
            consumer.seek(tps[p], s)
        left = {p: e - s for p, (s, e) in todo.items()}
        while any(left.values()):
            polled = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
            if not polled:
                raise TimeoutError(f"{topic}: {sum(left.values())} record(s) not delivered")
            out = []
            for tp, recs in polled.items():
                for r in recs:
                    if r.offset < todo[tp.partition][1]:
                        out.append(
                            RawMessage(
                                tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value
                            )
                        )
                left[tp.partition] = max(0, todo[tp.partition][1] - (recs[-1].offset + 1))
                if not left[tp.partition]:
                    consumer.pause(tp)
            if out:
                yield out
    finally:
        consumer.close()
