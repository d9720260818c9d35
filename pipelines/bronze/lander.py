"""The lander: Kafka -> decode -> bronze (Parquet files, or Iceberg tables), exactly once.

The lake, not the consumer group, records what has landed: its ``store`` (``store``). For the
Parquet lake, on start the lander removes the files of incomplete batches and reads the highest
landed offset per topic-partition from the file names; the Iceberg store reads them from the
tables' snapshot summaries. The lander assigns the partitions explicitly, or takes those the
consumer group gives it (``assignment``), and seeks just past them. Each poll is split per
topic-partition; each such batch is landed all-or-nothing (see ``writer``,
``pipelines.iceberg.landing``). Group offsets are committed afterwards only so monitoring
tools can show lag.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from pipelines.bronze.assignment import (
    GroupMembership,
    Member,
    add_new_topics,
    assign_partitions,
    group_id,
    tp_name,
)
from pipelines.bronze.batch import LandingResult, land_batch  # noqa: F401 - the lander's API
from pipelines.bronze.layout import list_lake
from pipelines.bronze.prefetch import Prefetcher, commit
from pipelines.bronze.progress import ProgressMeter
from pipelines.bronze.reader import landed_offsets
from pipelines.bronze.sink import InlineSink, OnBatch, ProcessSink
from pipelines.bronze.source import check_source, kafka_cluster_id
from pipelines.bronze.store import ParquetStore, Store
from pipelines.bronze.topics import lander_topics
from pipelines.bronze.writer import crash_point, recover
from pipelines.config import Settings
from pipelines.naming import QualifiedName

log = logging.getLogger(__name__)
_TRANSIENT = (KafkaConnectionError, KafkaTimeoutError)  # broker restarting / unreachable
TOPIC_REFRESH_S = 15.0
GROUP_JOIN_S = 60.0  # a batch run waits this long for the group to give it partitions
GROUP_SESSION_TIMEOUT_MS = 10_000  # the broker's group.min.session.timeout.ms is 6 s


class LanderBusy(RuntimeError):
    """Another lander holds the lake's lock (one writer per lake)."""


@contextmanager
def lake_lock(lake: Path) -> Iterator[None]:
    """Hold ``<lake>/.lander.lock`` exclusively, or raise ``LanderBusy``."""
    lake.mkdir(parents=True, exist_ok=True)
    with open(lake / ".lander.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LanderBusy(f"another lander is writing to {lake}") from exc
        yield


def _consumer(settings: Settings, member: Member) -> KafkaConsumer:
    fetch = max(settings.max_message_bytes, 1024 * 1024)
    return KafkaConsumer(
        **settings.kafka_client_options(),
        group_id=group_id(settings, member),
        client_id="changelake-lander",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=fetch,
        fetch_max_bytes=max(fetch, 64 * 1024 * 1024),
        request_timeout_ms=60_000,
        # a group member notices topics created since it joined (a table's first event) by
        # refreshing metadata; the explicit assignment asks itself (``add_new_topics``)
        metadata_max_age_ms=int(TOPIC_REFRESH_S * 1000),
        # a ``group`` member SIGKILLed keeps its partitions until its session expires
        # (kafka-python's default: 45 s); a rebalance waits for it too
        session_timeout_ms=GROUP_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=GROUP_SESSION_TIMEOUT_MS // 4,
        # spread every topic's partitions over the members, and keep each where it was across
        # rebalances (the range default gives every one-partition topic to the first member)
        partition_assignment_strategy=(StickyPartitionAssignor,),
    )


def land(
    settings: Settings,
    *,
    tables: Sequence[QualifiedName] | None = None,
    max_seconds: float | None = None,
    until_caught_up: bool = True,
    progress: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
    on_batch: OnBatch | None = None,
    on_lag: Callable[[int], None] | None = None,
    store: Store | None = None,
    member: Member | None = None,
) -> LandingResult:
    """Land the CDC topics of ``tables`` (default: all captured) plus transactions.

    ``store``: where batches land (default: the Parquet lake, one lander at a time); a store
    that is not ``exclusive`` can be shared by landers each taking its ``member``'s share of
    the partitions, or the share the consumer group gives it (default
    ``CHANGELAKE_LANDER_MEMBER``, see ``assignment``).

    ``until_caught_up``: stop once every partition reached the end offset seen at start
    (batch runs); otherwise run until ``max_seconds`` (continuous mode; forever if None).
    ``stop``: polled between polls; when true, land what is in flight and return (a graceful
    stop, see ``progress.stop_on_signals``). ``progress`` gets a line every few seconds.
    """
    lake = settings.lake_root
    started = time.monotonic()
    result = LandingResult()

    def done() -> bool:  # asked to stop: time is up, or ``stop`` says so
        over = max_seconds is not None and time.monotonic() - started >= max_seconds
        return over or (stop is not None and stop())

    def say(msg: str) -> None:
        log.info("%s", msg)
        if progress is not None:
            progress(msg)

    store = store or ParquetStore(lake)
    member = member or Member.parse(settings.lander_member)
    if store.exclusive and member.shares:
        raise LanderBusy(
            "the Parquet lake takes one lander: CHANGELAKE_LANDER_MEMBER needs Iceberg"
        )
    with lake_lock(lake) if store.exclusive else nullcontext():
        if store.exclusive:
            rec = recover(lake)
            if rec.incomplete_batches or rec.deleted_temps:
                say(
                    f"recovered: removed {rec.deleted_files} file(s) of {rec.incomplete_batches} "
                    f"incomplete batch(es), {rec.deleted_temps} temp file(s)"
                )
        check_source(lake, kafka_cluster_id(**settings.kafka_client_options()))
        consumer = _consumer(settings, member)
        try:
            hooks = (on_batch, on_lag)
            where = (store, member)
            _run(consumer, settings, where, tables, done, until_caught_up, say, result, hooks)
        finally:
            consumer.close(autocommit=False)
    result.seconds = time.monotonic() - started
    for w in result.warnings:
        log.warning("%s", w)
    return result


def _run(
    consumer: KafkaConsumer,
    settings: Settings,
    where: tuple[Store, Member],
    tables: Sequence[QualifiedName] | None,
    done: Callable[[], bool],
    until_caught_up: bool,
    say: Callable[[str], None],
    result: LandingResult,
    hooks: tuple[OnBatch | None, Callable[[int], None] | None] = (None, None),
) -> None:
    on_batch, on_lag = hooks
    store, member = where
    topics = lander_topics(settings, tables)
    group = None
    if member.group:  # Kafka splits the partitions: they come with the polls (``regroup``)
        tps: list[TopicPartition] = []
        end: dict[TopicPartition, int] = {}
        group = GroupMembership(consumer, store.landed)
        group.subscribe(topics)
        say(f"joining consumer group {group_id(settings, member)} for {len(topics)} topic(s)")
    else:
        tps = assign_partitions(consumer, topics, store.landed, member)
        if not tps:
            say("no topics to land yet")
            return
        end = consumer.end_offsets(tps)
        behind = sum(max(end[tp] - consumer.position(tp), 0) for tp in tps)
        say(
            f"landing {len(tps)} partition(s) of {len(topics)} topic(s); {behind:,} record(s) behind"
        )
    landed = {tp: consumer.position(tp) for tp in tps}  # next offset not yet landed
    fetcher = None
    if until_caught_up and group is None:  # backlog runs read ahead; follow mode re-plans
        fetcher = Prefetcher(
            consumer, tps, settings.batch_max_records, gather_bytes=store.batch_bytes
        )
        fetcher.start()
    sink = (ProcessSink if settings.lander_decode_process else InlineSink)(
        settings.lake_root, settings.topic_prefix, result, on_batch, store
    )

    def apply(done: list) -> None:
        """Move the landed offsets over polls a sink reports wholly landed, then commit."""
        for positions, commits in done:
            landed.update(positions)
            if commits:
                crash_point("before_commit")
                if fetcher is not None:
                    fetcher.commit(commits)
                else:
                    commit(consumer, commits)

    def regroup() -> list[TopicPartition]:
        """After a poll that rebalanced: land what is in flight, then hold the partitions
        the group gave, positioned past what the store holds (``GroupMembership``)."""
        apply(sink.drain())
        held = group.settle()
        for tp in [tp for tp in landed if tp not in held]:
            del landed[tp]
        landed.update({tp: consumer.position(tp) for tp in held})
        end.update(consumer.end_offsets(held) if held else {})
        say(f"landing {len(held)} partition(s) given by the group")
        return held

    last_refresh = started = time.monotonic()
    meter = ProgressMeter()
    ok = False
    try:
        while True:
            apply(sink.collect())
            if until_caught_up and all(landed[tp] >= end[tp] for tp in tps):
                if group is None or group.rebalances:
                    break
                if time.monotonic() - started > GROUP_JOIN_S:
                    say(f"the group gave this lander no partition in {GROUP_JOIN_S:.0f}s")
                    break
            if done():
                break
            if (
                group is None
                and fetcher is None
                and time.monotonic() - last_refresh > TOPIC_REFRESH_S
            ):
                last_refresh = time.monotonic()
                apply(sink.drain())
                try:
                    tps = add_new_topics(consumer, topics, tps, store.landed, end, member)
                    landed.update({tp: consumer.position(tp) for tp in tps if tp not in landed})
                except _TRANSIENT as exc:
                    _rewind(consumer, landed, exc)
                    continue
            t0 = time.monotonic()
            if fetcher is not None:
                item = fetcher.get(timeout=0.5)
                result.add_time("fetch", t0)
                if item is None:
                    continue
                polled, positions = item
            else:
                try:
                    polled = consumer.poll(timeout_ms=500, max_records=settings.batch_max_records)
                    if group is not None and group.changed:
                        tps = regroup()  # the poll's records are fetched again, from the lake's
                        continue
                    positions = {tp: consumer.position(tp) for tp in tps}
                except _TRANSIENT as exc:
                    apply(sink.drain())
                    _rewind(consumer, landed, exc)
                    continue
                result.add_time("fetch", t0)
            apply(sink.put(polled, positions))
            if meter.due():
                lag = _behind(consumer, tps, landed, end, live=fetcher is None)
                say(meter.line(result.events, result.quarantined, lag))
                if on_lag is not None and lag is not None:
                    on_lag(lag)
        apply(sink.drain())
        ok = True
    finally:
        sink.close(abort=not ok)
        if fetcher is not None and (pending := fetcher.stop()):
            commit(consumer, pending)
    end_now = consumer.end_offsets(tps) if tps else {}
    result.lag = {tp_name(tp): max(end_now[tp] - landed[tp], 0) for tp in tps}


def _behind(
    consumer: KafkaConsumer,
    tps: list[TopicPartition],
    landed: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    live: bool,
) -> int | None:
    """Records not landed: against fresh end offsets when ``live`` (follow mode owns the
    consumer), else those seen at start; None while Kafka is unreachable."""
    if live:
        try:
            end = consumer.end_offsets(tps)
        except _TRANSIENT:
            return None
    return sum(max(end[tp] - landed[tp], 0) for tp in tps)


def _rewind(consumer: KafkaConsumer, landed: dict[TopicPartition, int], exc: Exception) -> None:
    """Follow mode rides through a broker restart: records fetched but not landed when Kafka
    became unreachable are fetched again (seek back to the next offset not landed), so there is
    no gap; then wait a little before retrying."""
    log.warning("Kafka unreachable (%s); retrying from the last landed offsets", exc)
    for tp in consumer.assignment():
        if tp in landed:
            consumer.seek(tp, landed[tp])
    time.sleep(1.0)


def verify_landed(lake: Path) -> dict[tuple[str, int], int]:
    """Landed offsets after checking the lake holds no incomplete batch (for checks/tests)."""
    listing = list_lake(lake)
    if listing.incomplete:
        raise RuntimeError(f"{len(listing.incomplete)} incomplete batch(es) in {lake}")
    return landed_offsets(lake, listing)
