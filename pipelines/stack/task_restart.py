"""Wait until the connector's task runs the configuration just PUT.

Connect restarts the task after a config update asynchronously, and since changelake keeps the
publication itself (it already holds a new table before the PUT), "connector and task RUNNING"
is true of the old task too. A signal the old task reads is answered ``UNKNOWN_SCHEMA`` for a
table it does not capture: the snapshot ends at once and the table's rows never arrive. Every
task start reports its initial snapshot on the notification topic (``Initial Snapshot``,
``SKIPPED`` once offsets exist), so a notification of that kind after the PUT means the task
that will read the signal is the new one.
"""

from __future__ import annotations

import json
import logging
import time

from pipelines.config import Settings
from pipelines.stack.connector_config import notification_topic

log = logging.getLogger(__name__)
INITIAL = "Initial Snapshot"


def _consumer(settings: Settings):  # noqa: ANN202
    from kafka import KafkaConsumer

    return KafkaConsumer(
        **settings.kafka_client_options(), enable_auto_commit=False, request_timeout_ms=15000
    )


def notification_ends(settings: Settings) -> dict[int, int]:
    """End offset per partition of the notification topic now (none yet: empty)."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = _consumer(settings)
    except KafkaError as exc:  # then any task-start notification will do, as before
        log.warning("notification topic unreadable (%s)", exc)
        return {}
    try:
        topic = notification_topic(settings)
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {
            tp.partition: int(o) for tp, o in (consumer.end_offsets(tps) if tps else {}).items()
        }
    finally:
        consumer.close()


def _is_task_start(value: bytes | None) -> bool:
    try:
        doc = json.loads(value or b"null")
    except ValueError:
        return False
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    return isinstance(payload, dict) and payload.get("aggregate_type") == INITIAL


def wait_task_restarted(settings: Settings, since: dict[int, int], timeout: float = 90) -> bool:
    """Until an ``Initial Snapshot`` notification follows the offsets ``since`` (taken before
    the PUT); False (logged) when none came within ``timeout``."""
    from kafka import TopicPartition

    topic = notification_topic(settings)
    deadline = time.monotonic() + timeout
    consumer = _consumer(settings)
    try:
        while time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.5)
        else:
            parts = set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if tps:
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, since.get(tp.partition, 0))
        while tps and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                if any(_is_task_start(r.value) for r in records):
                    return True
    finally:
        consumer.close()
    log.warning("no task start on %s within %.0fs: the new task may not run yet", topic, timeout)
    return False
