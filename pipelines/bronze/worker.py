"""Decode and write bronze batches in a child process, in the order they are handed over.

Why: kafka-python parses records in pure Python, so fetching alone keeps one core busy; decoding
and writing Parquet on the same interpreter halved landing throughput (``bench`` P1).  With the
fetch in the lander's process and decode + write here, the two run on separate cores.

Exactly once still holds, because nothing about it moves:
* one worker, one FIFO queue: batches are written in offset order per partition, so the lake
  never has a gap that recovery could step over;
* the lander counts a poll as landed (and commits group offsets) only after the worker reported
  every batch of it written;
* the worker dies with the lander (``PR_SET_PDEATHSIG``), and checks its parent before each
  batch, so an orphan can never write next to a restarted lander;
* a worker that dies is an error in the lander; a crash point hit here kills the lander too,
  as if the whole lander had crashed there.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.bronze import writer
from pipelines.bronze.store import Store

Row = tuple[str, int, int, int, bytes | None, bytes | None]  # topic, partition, offset, ts, k, v
_PR_SET_PDEATHSIG = 1


@dataclass
class WorkerReport:
    """What the worker did with one batch (``written`` is a ``writer.WrittenBatch``)."""

    seq: int
    written: writer.WrittenBatch | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tombstones: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class WorkerDied(RuntimeError):
    """The decode process failed or exited; the batches it had not reported are not landed."""


class DecodeProcess:
    """A child process that lands batches FIFO; ``submit`` hands one over, ``reports`` returns
    the reports that arrived (blocking for at least one when ``wait``)."""

    def __init__(
        self, lake: Path, topic_prefix: str, depth: int = 8, store: Store | None = None
    ) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process with Kafka client threads
        self._in = ctx.Queue(maxsize=depth)
        self._out = ctx.Queue()
        self._proc = ctx.Process(
            target=_serve,
            args=(str(lake), topic_prefix, os.getpid(), self._in, self._out, store),
            name="changelake-decode",
            daemon=True,
        )
        self._seq = 0
        self.pending = 0

    def start(self) -> None:
        self._proc.start()

    def submit(self, rows: Sequence[Row]) -> int:
        """Queue one batch (consecutive records of one partition); returns its sequence no."""
        self._seq += 1
        while True:
            self._check_alive()
            try:
                self._in.put((self._seq, list(rows)), timeout=0.5)
                break
            except queue.Full:
                continue
        self.pending += 1
        return self._seq

    def reports(self, wait: bool, timeout: float = 0.5) -> list[WorkerReport]:
        """Reports that arrived; with ``wait``, block until one does (re-checking the worker)."""
        out: list[WorkerReport] = []
        while self.pending:
            try:
                rep = self._out.get(timeout=timeout) if wait and not out else self._out.get_nowait()
            except queue.Empty:
                if wait and not out:
                    self._check_alive()
                    continue
                break
            self.pending -= 1
            if rep.error is not None:
                raise WorkerDied(f"decode process failed on a batch: {rep.error}")
            out.append(rep)
        return out

    def close(self) -> None:
        """Stop the worker after the batches already queued (callers drain reports first)."""
        if self._proc.is_alive():
            with contextlib.suppress(queue.Full):
                self._in.put(None, timeout=5)
            self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        self._in.close()
        self._out.close()

    def kill(self) -> None:
        """Stop at once: a batch being written is left incomplete, for ``recover`` to remove."""
        self._proc.kill()
        self._proc.join(timeout=5)

    def _check_alive(self) -> None:
        if not self._proc.is_alive():
            raise WorkerDied(f"decode process exited with code {self._proc.exitcode}")


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the lander dies; exit now if it already did."""
    # not Linux (no prctl): the per-batch parent check still holds
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _serve(
    lake: str,
    topic_prefix: str,
    parent: int,
    inq: mp.Queue,
    outq: mp.Queue,
    store: Store | None = None,
) -> None:
    """Worker main loop: land each batch in order, report it; ``None`` ends the loop."""
    from pipelines.bronze.batch import LandingResult, land_batch
    from pipelines.bronze.evolution import SchemaWatch
    from pipelines.decode import RawMessage

    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the lander decides when this process stops (the
    # None sentinel after a graceful stop, kill() on an error, SIGKILL when the lander dies)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    writer.also_kill_on_crash(parent)
    root, watch = Path(lake), SchemaWatch(Path(lake))
    while (item := inq.get()) is not None:
        seq, rows = item
        if os.getppid() != parent:
            os._exit(1)  # orphaned: a new lander may own the lake now
        res = LandingResult()
        try:
            msgs = [RawMessage(*r) for r in rows]
            del rows, item
            written = land_batch(
                root, msgs, topic_prefix=topic_prefix, result=res, watch=watch, store=store
            )
            del msgs
            outq.put(WorkerReport(seq, written, res.timings, res.tombstones, res.warnings))
        except Exception as exc:  # noqa: BLE001 - reported to the lander, which stops
            outq.put(WorkerReport(seq, error=f"{type(exc).__name__}: {exc}"))
            return
