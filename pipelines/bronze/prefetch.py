"""Read ahead from Kafka while the previous batch decodes and writes.

Measured on a Debezium backlog, most of a kafka-python fetch is waiting on the broker, not
CPU; fetching in a thread overlaps that wait with decoding.  The consumer is not thread-safe,
so while a ``Prefetcher`` runs only its thread touches the consumer: group-offset commits are
handed to it, and after ``stop`` the caller owns the consumer again.  Exactly-once does not
depend on this thread: records it fetched but nobody landed are simply fetched again next run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list]
Positions = dict[TopicPartition, int]
Commits = dict[TopicPartition, OffsetAndMetadata]


class Prefetcher:
    """A fetch thread feeding ``(records by partition, positions after them)`` to a queue."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        tps: list[TopicPartition],
        max_records: int,
        depth: int = 2,
        gather_bytes: int = 0,
    ) -> None:
        self._consumer, self._tps, self._max = consumer, list(tps), max_records
        self._gather = gather_bytes  # merge polls up to this many value bytes (0: one poll)
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._commits: queue.Queue[Commits] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lander-fetch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get(self, timeout: float) -> tuple[Polled, Positions] | None:
        """The next poll's records and positions, ``None`` on timeout; re-raises fetch errors."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def commit(self, offsets: Commits) -> None:
        """Ask the fetch thread to commit group offsets (monitoring only)."""
        self._commits.put(offsets)

    def stop(self) -> Commits:
        """Stop and join the thread; return commits it did not get to (caller commits them)."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            raise RuntimeError("Kafka fetch thread did not stop within 30s")
        pending: Commits = {}
        while not self._commits.empty():
            pending.update(self._commits.get_nowait())
        return pending

    def _drain_commits(self) -> None:
        offsets: Commits = {}
        while not self._commits.empty():
            offsets.update(self._commits.get_nowait())
        if offsets:
            commit(self._consumer, offsets)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.2)
                return
            except queue.Full:
                self._drain_commits()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_commits()
                polled = self._gathered()
                positions = {tp: self._consumer.position(tp) for tp in self._tps}
                self._put((polled, positions))
        except BaseException as exc:  # noqa: BLE001 - handed to the landing thread
            self._put(exc)

    def _gathered(self) -> Polled:
        """One poll, or with ``gather_bytes`` several merged (per partition, in order) until
        they hold that many value bytes, a poll comes back empty, or a second has passed: a
        store whose every write is a commit (Iceberg) then commits far fewer, larger batches."""
        polled = self._consumer.poll(timeout_ms=200, max_records=self._max)
        if not self._gather:
            return polled
        size, deadline = _value_bytes(polled), time.monotonic() + 1.0
        while polled and size < self._gather and time.monotonic() < deadline:
            more = self._consumer.poll(timeout_ms=200, max_records=self._max)
            if not more:
                break
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
            size += _value_bytes(more)
        return polled


def _value_bytes(polled: Polled) -> int:
    return sum(max(r.serialized_value_size, 0) for rs in polled.values() for r in rs)


def commit(consumer: KafkaConsumer, offsets: Commits) -> None:
    """Commit group offsets; a failure is logged, never fatal (the lake is the truth)."""
    try:
        consumer.commit(offsets)
    except Exception as exc:  # noqa: BLE001 - lag display must not stop landing
        log.warning("group offset commit failed (landing unaffected): %s", exc)
