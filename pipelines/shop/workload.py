"""``changelake workload``: a seeded, rate-limited OLTP workload against the demo shop.

N threads, one psycopg connection each, run the business transactions of ``actions.py`` drawn
from a weighted mix. Each thread has its own ``random.Random(seed, worker)`` so the sequence
of actions and values per worker is reproducible (the interleaving between workers is not:
that is the database's business). A Black-Friday burst multiplies the rate and shifts the mix
towards orders for a window in the middle of the run; its instants are returned so the demo
can ask "what was the inventory worth at 14:00 on Black Friday?".
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from pipelines.config import Settings
from pipelines.shop.actions import MIX
from pipelines.shop.seed import seed_shop

# Concurrency races between workers, retried with fresh random values. A foreign-key clash
# can only come from a race (a row picked, then deleted by another worker before use).
RETRYABLE = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.UniqueViolation,
    psycopg.errors.LockNotAvailable,
    psycopg.errors.ForeignKeyViolation,
)
BURST_FACTOR = 4.0  # rate multiplier during the Black-Friday window


@dataclass(frozen=True)
class BlackFriday:
    """The burst window (UTC, wall clock) and the instant the demo asks about inside it."""

    start: datetime
    end: datetime
    ask_at: datetime


@dataclass
class WorkloadResult:
    """What ran: committed transactions per action, failures, and the achieved rate."""

    seed: int
    committed: int = 0
    noops: int = 0
    failed: int = 0
    retried: int = 0
    elapsed_s: float = 0.0
    by_action: Counter = field(default_factory=Counter)
    black_friday: BlackFriday | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def achieved_tps(self) -> float:
        return self.committed / self.elapsed_s if self.elapsed_s else 0.0


def plan_black_friday(start: datetime, duration: float) -> BlackFriday:
    """The burst covers 40%..70% of the run; the question is asked at its middle."""
    b0 = start + timedelta(seconds=0.4 * duration)
    b1 = start + timedelta(seconds=0.7 * duration)
    return BlackFriday(b0, b1, b0 + (b1 - b0) / 2)


def _worker(
    settings: Settings,
    seed: int,
    idx: int,
    salt: int,
    rate: float,
    t0: float,
    duration: float,
    burst: tuple[float, float] | None,
    result: WorkloadResult,
    lock: threading.Lock,
) -> None:
    rng = random.Random(f"{seed}/{idx}")
    actions = [a for a, _, _ in MIX]
    normal, peak = [w for _, w, _ in MIX], [w for _, _, w in MIX]
    local, n, next_at = Counter(), 0, t0
    with psycopg.connect(settings.pg_dsn(), autocommit=False) as conn:
        while (now := time.monotonic()) < t0 + duration:
            in_burst = burst is not None and burst[0] <= now - t0 < burst[1]
            next_at = max(next_at, now - 1.0)  # never "catch up" more than a second of backlog
            if next_at > now:
                time.sleep(next_at - now)
            next_at += 1.0 / (rate * (BURST_FACTOR if in_burst else 1.0))
            action = rng.choices(actions, peak if in_burst else normal)[0]
            n += 1
            tag = f"s{seed}w{idx}r{salt}n{n}"
            for attempt in range(4):
                try:
                    with conn.transaction():
                        done = action(conn, random.Random(f"{tag}/{attempt}"), tag)
                    local["ok" if done else "noop"] += 1
                    if done:
                        local[action.__name__] += 1
                    break
                except RETRYABLE as exc:
                    local["retried"] += 1
                    if attempt == 3:
                        local["failed"] += 1
                        with lock:
                            result.errors.append(f"{action.__name__}: {exc}")
    with lock:
        result.committed += local.pop("ok", 0)
        result.noops += local.pop("noop", 0)
        result.failed += local.pop("failed", 0)
        result.retried += local.pop("retried", 0)
        result.by_action.update(local)


def run_workload(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    connections: int = 2,
    seed: int = 42,
    black_friday: bool = False,
) -> WorkloadResult:
    """Seed the shop if empty, then run ``rate`` tx/s for ``duration`` s over N connections.

    Transactions that hit a deadlock, serialization failure or unique clash are retried with
    fresh random values (up to 4 attempts) and counted; other errors stop the run loudly.
    """
    if rate <= 0 or duration <= 0 or connections < 1:
        raise ValueError("rate and duration must be positive and connections >= 1")
    with psycopg.connect(settings.pg_dsn(), autocommit=False) as conn:
        seed_shop(conn, random.Random(seed))
        (salt,) = conn.execute("SELECT count(*) FROM shop.customers").fetchone()
    result, lock = WorkloadResult(seed=seed), threading.Lock()
    started = datetime.now(UTC)
    if black_friday:
        result.black_friday = plan_black_friday(started, duration)
    burst = (0.4 * duration, 0.7 * duration) if black_friday else None
    t0 = time.monotonic()
    failures: list[BaseException] = []

    def target(i: int) -> None:
        try:
            _worker(settings, seed, i, salt, rate / connections, t0, duration, burst, result, lock)
        except BaseException as exc:  # surfaced after join: a worker must not die silently
            failures.append(exc)

    threads = [
        threading.Thread(target=target, args=(i,), name=f"workload-{i}") for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed_s = time.monotonic() - t0
    if failures:
        raise RuntimeError(f"workload worker failed: {failures[0]!r}") from failures[0]
    return result
