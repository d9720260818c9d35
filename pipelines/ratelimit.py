"""A token bucket: the one rate rule the order API (server side, answering 429) and the
enrichment client (pacing its own calls) share.

``rate`` tokens per second accrue up to ``burst``; a request takes one. ``try_take`` answers at
once (the server), ``take`` sleeps until a token is there (the client). Thread-safe.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 (0: unlimited) and burst >= 1")
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self) -> float:
        """Take a token if one is there: 0.0; else the seconds until one will be (nothing taken)."""
        if self.rate == 0:
            return 0.0
        with self._lock:
            self._refill(time.monotonic())
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Block until a token is taken."""
        while (wait := self.try_take()) > 0:
            time.sleep(wait)
