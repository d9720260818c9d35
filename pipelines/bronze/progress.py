"""What a long landing run tells its user: a progress line every few seconds, a graceful stop on
Ctrl-C or SIGTERM, and the summary of what landed.

The lander calls ``ProgressMeter.line`` when ``due``; ``stop_on_signals`` turns the first SIGINT
or SIGTERM into a request the lander honours between polls (it drains what is in flight, stops
its decode process and returns its result as after ``--max-seconds``); a second one interrupts
at once (``KeyboardInterrupt``; the lake stays consistent: recovery drops incomplete batches).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PROGRESS_EVERY_S = 5.0


@dataclass
class ProgressMeter:
    """Rate over the last interval, not since the start: a follow run idles between bursts."""

    every: float = PROGRESS_EVERY_S
    _at: float = field(default_factory=time.monotonic)
    _events: int = 0

    def due(self) -> bool:
        return time.monotonic() - self._at >= self.every

    def line(self, events: int, quarantined: int, lag: int | None) -> str:
        """``events`` landed so far; ``lag``: records in Kafka not landed yet (None: unknown)."""
        now = time.monotonic()
        rate = (events - self._events) / max(now - self._at, 1e-6)
        self._at, self._events = now, events
        lag_text = "unknown" if lag is None else f"{lag:,} record(s)"
        extra = f", {quarantined:,} quarantined" if quarantined else ""
        return f"{events:,} events landed, {rate:,.0f} events/s, lag {lag_text}{extra}"


def stamped(emit: Callable[[str], object]) -> Callable[[str], None]:
    """``emit`` with the wall-clock time in front of each line (a follow run's log)."""

    def out(msg: str) -> None:
        emit(f"{time.strftime('%H:%M:%S')} {msg}")

    return out


@dataclass
class StopRequest:
    """Set by the first SIGINT/SIGTERM; ``signal_name`` says which one."""

    event: threading.Event = field(default_factory=threading.Event)
    signal_name: str | None = None

    def __call__(self) -> bool:
        return self.event.is_set()


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT/SIGTERM request a graceful stop (main thread only)."""
    req = StopRequest()

    def handler(signum: int, _frame: object) -> None:
        if req.event.is_set():
            raise KeyboardInterrupt  # second signal: stop now
        req.signal_name = signal.Signals(signum).name
        req.event.set()

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield req
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def summary_line(result, stopped_by: str | None = None) -> str:  # noqa: ANN001 - a LandingResult
    """One line for the end of a run (the CLI prints the per-table table above it)."""
    rate = result.events / result.seconds if result.seconds else 0.0
    lag = sum(result.lag.values())
    why = f"stopped by {stopped_by}: " if stopped_by else ""
    return (
        f"{why}landed {result.events:,} events ({result.messages:,} records) in "
        f"{result.seconds:.1f}s, {rate:,.0f} events/s; files {result.files:,}, quarantined "
        f"{result.quarantined:,}, tombstones {result.tombstones:,}; lag at the end {lag:,}"
    )
