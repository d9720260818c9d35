"""Supervised stages of ``changelake run``: each a thread that is retried with backoff.

A stage is a function ``step(stop)`` that does one unit of work (or runs until ``stop`` is set)
and returns; the supervisor calls it again and again until the service stops. A stage that
raises is marked unhealthy, reported with its reason, and retried after an exponential backoff
(1 s doubling to ``max_backoff_s``); the other stages go on. A step that returns normally marks
the stage healthy again and resets its backoff.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Step = Callable[[threading.Event], None]
Report = Callable[["StageState"], None]


@dataclass
class StageState:
    """What a stage did so far: runs, failures, the last error, whether it is healthy now."""

    name: str
    healthy: bool = True
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_ok: float | None = None  # wall clock of the last step that returned normally
    seconds: float = 0.0  # wall time spent in steps

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Stage:
    """One supervised loop. ``pause_s``: wait between two normal steps (0: at once)."""

    name: str
    step: Step
    pause_s: float = 0.0
    max_backoff_s: float = 30.0
    state: StageState = field(init=False)

    def __post_init__(self) -> None:
        self.state = StageState(self.name)
        self._report: Report | None = None

    def beat(self) -> None:
        """A long step says it is working (the lander after each batch): healthy again."""
        if not self.state.healthy or time.time() - (self.state.last_ok or 0) >= 1.0:
            self.state.healthy = True
            self.state.last_ok = time.time()
            if self._report is not None:
                self._report(self.state)

    def loop(self, stop: threading.Event, report: Report) -> None:
        self._report = report
        backoff = 1.0
        report(self.state)  # up (or still failing) from the start of each step
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                self.step(stop)
            except Exception as exc:  # noqa: BLE001 - a failing stage is reported, not fatal
                self.state.failures += 1
                self.state.healthy = False
                first = (str(exc).splitlines() or [""])[0][:300]
                self.state.last_error = f"{type(exc).__name__}: {first}"
                log.warning(
                    "stage %s failed (%s); retrying in %.0fs",
                    self.name,
                    self.state.last_error,
                    backoff,
                )
                log.debug("%s", traceback.format_exc())
                self.state.seconds += time.monotonic() - t0
                report(self.state)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.state.runs += 1
            self.state.healthy = True
            self.state.last_ok = time.time()
            self.state.seconds += time.monotonic() - t0
            backoff = 1.0
            report(self.state)
            if self.pause_s:
                stop.wait(self.pause_s)


class Supervisor:
    """Runs stages on threads until ``stop`` is set; ``join`` waits a bounded time."""

    def __init__(self, stages: list[Stage], report: Report) -> None:
        self.stages, self.report = stages, report
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(
                target=s.loop, args=(self.stop, report), name=f"run-{s.name}", daemon=True
            )
            for s in stages
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> list[str]:
        """Wait for every stage to finish its step; the names of those still running."""
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [s.name for s, t in zip(self.stages, self.threads, strict=True) if t.is_alive()]
