"""Where the lander hands each poll: landed on its own thread, or by the decode process.

Both sinks take a poll (records by partition, consumer positions after it) and return the polls
now fully landed, oldest first, as ``(positions, group offsets to commit)``.  The lander moves
its landed offsets only on what a sink returns, so a poll still in flight is never counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from pipelines.bronze.assignment import tp_name
from pipelines.bronze.batch import land_batch
from pipelines.bronze.evolution import SchemaWatch
from pipelines.bronze.store import Store
from pipelines.bronze.worker import DecodeProcess
from pipelines.bronze.writer import WrittenBatch
from pipelines.decode import RawMessage

Positions = dict[TopicPartition, int]
Commits = dict[TopicPartition, OffsetAndMetadata]
Done = list[tuple[Positions, Commits]]
OnBatch = Callable[[WrittenBatch], None]  # told of each batch once it has landed whole


def account(result, tp: TopicPartition, first: int, last: int, n: int, w: WrittenBatch) -> None:  # noqa: ANN001
    """Add one landed batch (``n`` records, offsets ``first``..``last``) to a LandingResult."""
    result.messages += n
    result.files += len(w.paths)
    result.quarantined += w.quarantined
    for name, rows in w.rows.items():
        result.per_table[name] = result.per_table.get(name, 0) + rows
        result.events += rows
    if w.transactions:
        result.per_table["_transactions"] = (
            result.per_table.get("_transactions", 0) + w.transactions
        )
    start = result.offsets.get(tp_name(tp), (first, 0))[0]
    result.offsets[tp_name(tp)] = (start, last)


class InlineSink:
    """Decode and write on the calling thread: simplest, one core."""

    def __init__(
        self,
        lake: Path,
        topic_prefix: str,
        result,  # noqa: ANN001
        on_batch: OnBatch | None = None,
        store: Store | None = None,
    ) -> None:
        self.lake, self.prefix, self.result = lake, topic_prefix, result
        self.watch = SchemaWatch(lake)
        self.on_batch, self.store = on_batch, store

    def put(self, polled: dict, positions: Positions) -> Done:
        commits: Commits = {}
        for tp, records in sorted(polled.items()):
            if not records:
                continue
            msgs = [
                RawMessage(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                for r in records
            ]
            w = land_batch(
                self.lake,
                msgs,
                topic_prefix=self.prefix,
                result=self.result,
                watch=self.watch,
                store=self.store,
            )
            account(self.result, tp, records[0].offset, records[-1].offset, len(records), w)
            if self.on_batch is not None:
                self.on_batch(w)
            commits[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        return [(positions, commits)]

    def collect(self, wait: bool = False) -> Done:
        return []

    def drain(self) -> Done:
        return []

    def close(self, abort: bool = False) -> None:
        pass


@dataclass
class _Poll:
    positions: Positions
    commits: Commits = field(default_factory=dict)
    open: int = 0  # batches not yet reported


class ProcessSink:
    """Hand batches to a ``DecodeProcess``; at most ``max_polls`` polls in flight (memory)."""

    def __init__(
        self,
        lake: Path,
        topic_prefix: str,
        result,  # noqa: ANN001
        on_batch: OnBatch | None = None,
        store: Store | None = None,
        max_polls: int = 2,
    ) -> None:
        self.result, self.max_polls, self.on_batch = result, max_polls, on_batch
        self.proc = DecodeProcess(lake, topic_prefix, store=store)
        self.proc.start()
        self.polls: deque[_Poll] = deque()
        self.batches: dict[int, tuple[_Poll, TopicPartition, int, int, int]] = {}

    def put(self, polled: dict, positions: Positions) -> Done:
        poll = _Poll(positions)
        self.polls.append(poll)
        for tp, records in sorted(polled.items()):
            if not records:
                continue
            rows = [(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in records]
            seq = self.proc.submit(rows)
            self.batches[seq] = (poll, tp, records[0].offset, records[-1].offset, len(records))
            poll.open += 1
        done = self.collect()
        while len(self.polls) > self.max_polls:
            done += self.collect(wait=True)
        return done

    def collect(self, wait: bool = False) -> Done:
        """Account the reports that arrived; return the polls now wholly landed, in order."""
        t0 = time.monotonic()
        for rep in self.proc.reports(wait=wait):
            poll, tp, first, last, n = self.batches.pop(rep.seq)
            for stage, s in rep.timings.items():
                self.result.timings[stage] = self.result.timings.get(stage, 0.0) + s
            self.result.tombstones += rep.tombstones
            self.result.warnings += rep.warnings
            account(self.result, tp, first, last, n, rep.written)
            if self.on_batch is not None:
                self.on_batch(rep.written)
            poll.commits[tp] = OffsetAndMetadata(last + 1, "", -1)
            poll.open -= 1
        if wait:
            self.result.add_time("wait", t0)
        done: Done = []
        while self.polls and self.polls[0].open == 0:
            p = self.polls.popleft()
            done.append((p.positions, p.commits))
        return done

    def drain(self) -> Done:
        """Wait until every poll handed over has landed."""
        done = self.collect()
        while self.polls:
            done += self.collect(wait=True)
        return done

    def close(self, abort: bool = False) -> None:
        """Stop the worker; ``abort``: at once (an error), batches in flight are not landed."""
        if abort:
            self.proc.kill()
        self.proc.close()
