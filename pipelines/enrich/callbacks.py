"""The two callback strategies: thin event -> HTTP call to the order API -> row.

``n_plus_one`` is the trap: one ``GET /orders/{id}`` per event, one after another. ``batched``
asks ``GET /orders?ids=...`` once per batch of events, with at most ``concurrency`` calls in
flight, paced by a client-side token bucket; a call answered 429 is retried with exponential
backoff (at least the server's ``retry_after_s``). Both return the state at FETCH time, which
is not the state the event referred to when the order changed again in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa
import requests

from pipelines.config import Settings
from pipelines.enrich.rows import STATE_COLUMNS, join_states
from pipelines.enrich.thin import THIN_SCHEMA
from pipelines.ratelimit import TokenBucket

BACKOFF_BASE_S, BACKOFF_CAP_S = 0.05, 5.0
_STATE_FIELDS = [("order_id", pa.int64()), *[(c, pa.string()) for c in STATE_COLUMNS]]


@dataclass
class CallStats:
    """What the client did: HTTP requests sent (retries included), 429 answers, retries."""

    calls: int = 0
    rejected_429: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)


def backoff_s(attempt: int, retry_after_s: float = 0.0) -> float:
    """Wait before retry ``attempt`` (0-based): exponential, capped, never below the server's hint."""
    return max(retry_after_s, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def call(
    session: requests.Session,
    url: str,
    stats: CallStats,
    *,
    params: dict[str, str] | None = None,
    max_retries: int = 8,
    bucket: TokenBucket | None = None,
) -> object | None:
    """One logical call: the JSON answer, None for 404; retried on 429 up to ``max_retries``."""
    for attempt in range(max_retries + 1):
        if bucket is not None:
            bucket.take()
        stats.add(calls=1)
        resp = session.get(url, params=params, timeout=30)
        if resp.status_code == 429:
            stats.add(rejected_429=1)
            if attempt == max_retries:
                raise RuntimeError(f"{url}: still 429 after {max_retries} retries")
            stats.add(retries=1)
            time.sleep(backoff_s(attempt, float(resp.json().get("retry_after_s", 0))))
            continue
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()
    raise AssertionError("unreachable")


def _states(rows: list[dict]) -> pa.Table:
    cols = {name: [r.get(name) for r in rows] for name, _ in _STATE_FIELDS}
    return pa.table(
        {
            n: pa.array(
                [None if v is None else str(v) for v in cols[n]] if t == pa.string() else cols[n], t
            )
            for n, t in _STATE_FIELDS
        }
    )


def n_plus_one(
    settings: Settings, base_url: str, chunks: Iterable[pa.Table], stats: CallStats
) -> pa.Table:
    """One ``GET /orders/{id}`` per event, sequentially."""
    out = []
    with requests.Session() as session:
        for events in chunks:
            rows = []
            for oid in events.column("order_id").to_pylist():
                row = call(
                    session,
                    f"{base_url}/orders/{oid}",
                    stats,
                    max_retries=settings.enrich_max_retries,
                )
                rows.append(row if row is not None else {"order_id": oid})
            fetched = _states(rows).append_column("_offset", events.column("_offset"))
            fetched = fetched.append_column("_partition", events.column("_partition"))
            out.append(join_states(events, fetched, on=("_partition", "_offset")))
    return pa.concat_tables(out) if out else join_states(THIN_SCHEMA.empty_table(), _states([]))


def _batches(chunks: Iterable[pa.Table], size: int) -> Iterator[pa.Table]:
    """Batches of exactly ``size`` events across chunk boundaries (the last may be smaller);
    the next chunk is pulled only when the buffer holds less than a batch."""
    buffer = THIN_SCHEMA.empty_table()
    for events in chunks:
        buffer = pa.concat_tables([buffer, events])
        while buffer.num_rows >= size:
            yield buffer.slice(0, size)
            buffer = buffer.slice(size)
    if buffer.num_rows:
        yield buffer


def batched(
    settings: Settings, base_url: str, chunks: Iterable[pa.Table], stats: CallStats
) -> pa.Table:
    """One ``GET /orders?ids=`` per batch of ``enrich_batch_size`` events, ``enrich_concurrency``
    in flight; the next chunk is pulled from ``chunks`` only when a slot is free."""
    size, width = settings.enrich_batch_size, settings.enrich_concurrency
    bucket = TokenBucket(settings.enrich_client_rate, max(1, width))
    local = threading.local()

    def fetch(events: pa.Table) -> pa.Table:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        ids = sorted(set(events.column("order_id").to_pylist()))
        doc = call(
            local.session,
            f"{base_url}/orders",
            stats,
            params={"ids": ",".join(map(str, ids))},
            max_retries=settings.enrich_max_retries,
            bucket=bucket,
        )
        return join_states(events, _states(doc["orders"]))

    done: list[pa.Table] = []
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="enrich") as pool:
        flying: set[Future] = set()
        for batch in _batches(chunks, size):
            while len(flying) >= width:  # backpressure: wait for a free slot
                finished, flying = wait(flying, return_when=FIRST_COMPLETED)
                done += [f.result() for f in finished]
            flying.add(pool.submit(fetch, batch))
        done += [f.result() for f in flying]
    if not done:
        return join_states(THIN_SCHEMA.empty_table(), _states([]))
    return pa.concat_tables(done).sort_by([("_partition", "ascending"), ("_offset", "ascending")])
