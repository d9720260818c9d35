"""N1: 10,000 thin notifications through each enrichment strategy while checkout runs.

On the private stack with the demo shop captured: the shop's workload first produces the
notifications (its trigger emits one per order status change) and bronze lands them; then a
checkout loop (``place_order`` + ``pay_order`` transactions, fixed rate, latency per
committed transaction) runs once without enrichment (the baseline) and once beside each
strategy enriching the SAME window of events. Per strategy: wall time, events/s, API calls,
source-database queries (the API's own count), 429s, checkout p50/p99 and how many enriched
rows disagree with the state at event time (the order version the event's own transaction
wrote, ``pipelines.enrich.lake.truth``).
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import requests

from bench.common import Result, Target, percentile
from bench.stack import ensure_stack, private_env
from pipelines.bronze.lander import land
from pipelines.config import Settings
from pipelines.decode.special import Quarantine
from pipelines.enrich import lake as lakemod
from pipelines.enrich import source, thin
from pipelines.enrich.rows import disagreements
from pipelines.enrich.strategies import STRATEGIES, api_url, enrich
from pipelines.shop import actions
from pipelines.shop.migrate import SHOP_TABLES, create_shop
from pipelines.shop.workload import RETRYABLE, run_workload
from pipelines.stack import lifecycle

CHECKOUT_RATE = 40.0  # checkout transactions/s during each measured phase
BASELINE_S = 15.0


class Checkout:
    """place_order / pay_order at a fixed rate over 2 connections; latency per commit."""

    def __init__(self, settings: Settings, rate: float = CHECKOUT_RATE) -> None:
        self.settings, self.rate = settings, rate
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failed = 0

    def _loop(self, idx: int) -> None:
        import psycopg

        rng = random.Random(f"checkout/{idx}")
        gap = 2.0 / self.rate
        with psycopg.connect(self.settings.pg_dsn(), autocommit=False) as conn:
            next_at = time.monotonic()
            n = 0
            while not self._stop.is_set():
                next_at = max(next_at + gap, time.monotonic() - 1.0)
                time.sleep(max(0.0, next_at - time.monotonic()))
                n += 1
                action = actions.place_order if n % 2 else actions.pay_order
                t0 = time.perf_counter()
                try:
                    with conn.transaction():
                        done = action(conn, rng, f"co{idx}n{n}")
                except RETRYABLE:
                    self.failed += 1
                    continue
                if done:
                    self.latencies.append(time.perf_counter() - t0)

    def __enter__(self) -> Checkout:
        self._threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(2)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def figures(self) -> dict[str, float | int | None]:
        ms = [x * 1000 for x in self.latencies]
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        return {
            "checkout_tx": len(ms),
            "checkout_p50_ms": None if p50 is None else round(p50, 2),
            "checkout_p99_ms": None if p99 is None else round(p99, 2),
        }


def _stats(settings: Settings) -> dict[str, int]:
    return requests.get(f"{api_url(settings)}/stats", timeout=10).json()


def _shop_settings(progress) -> Settings:  # noqa: ANN001
    base = ensure_stack(progress=progress)
    tables = ",".join(dict.fromkeys([*base.tables, *(str(t) for t in SHOP_TABLES)]))
    os.environ["CHANGELAKE_TABLES"] = tables
    settings = Settings()
    create_shop(settings)
    lifecycle.register_connector(settings)
    lifecycle.wait_connector_running(settings, timeout=120)
    return settings


def _produce(settings: Settings, events: int, progress) -> tuple[dict[int, int], dict[int, int]]:  # noqa: ANN001
    start = source.end_offsets(settings)
    target = sum(start.values()) + events
    while sum(source.end_offsets(settings).values()) < target:
        run_workload(settings, rate=400, duration=10, connections=4, seed=int(time.time()))
        progress(f"N1: {sum(source.end_offsets(settings).values()) - sum(start.values()):,} events")
    end, left = {}, events
    for p in sorted(source.end_offsets(settings)):  # the topic may not have existed at start
        end[p] = start.get(p, 0) + left
        left = 0
    return start, end


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("N1", "event notification", command, smoke=smoke)
    private_env()
    settings = _shop_settings(progress)
    start, end = _produce(settings, events, progress)
    land(settings, tables=[lakemod.ORDERS], until_caught_up=True)
    q = Quarantine(datetime.now(UTC))
    window = pa.concat_tables([thin.parse(c, q) for c in source.chunks(settings, start, end)])
    assert window.num_rows == events and not len(q), (window.num_rows, len(q))
    truth = lakemod.truth(settings, window)
    assert truth.filter(pc.is_null(truth.column("status"))).num_rows == 0
    with Checkout(settings) as base:
        time.sleep(BASELINE_S)
    metrics: dict = {"baseline": base.figures()}
    chunks = [window.slice(i, 1000) for i in range(0, window.num_rows, 1000)]
    for name in STRATEGIES:
        progress(f"N1: {name}")
        before = _stats(settings)
        with Checkout(settings) as load:
            res = enrich(settings, iter(chunks), strategy=name)
        after = _stats(settings)
        metrics[name] = {
            "wall_s": round(res.seconds, 2),
            "events_per_s": round(events / res.seconds, 1),
            "api_calls": res.calls,
            "source_db_queries": after["db_queries"] - before["db_queries"],
            "http_429": res.rejected_429,
            "retries": res.retries,
            "unresolved": res.unresolved,
            "disagree_with_event_time": disagreements(res.rows, truth),
            **load.figures(),
        }
    b, size = metrics["batched"], settings.enrich_batch_size
    r.params = {
        "events": events,
        "batch_size": size,
        "concurrency": settings.enrich_concurrency,
        "client_rate": settings.enrich_client_rate,
        "server_rate": settings.order_api_rate,
        "checkout_rate": CHECKOUT_RATE,
    }
    r.metrics = metrics
    r.targets = [
        Target(
            "n_plus_one API calls (N + retries)",
            metrics["n_plus_one"]["api_calls"],
            "info",
            0,
            "calls",
        ),
        Target(
            "batched API calls",
            b["api_calls"],
            "<=",
            math.ceil(events / size) + b["retries"],
            "calls",
        ),
        Target("lake API calls", metrics["lake"]["api_calls"], "<=", 0, "calls"),
        *[
            Target(f"{n} events/s", metrics[n]["events_per_s"], "info", 0, "ev/s")
            for n in STRATEGIES
        ],
        *[
            Target(
                f"{n} rows != state at event time",
                metrics[n]["disagree_with_event_time"],
                "info",
                0,
                "rows",
            )
            for n in ("n_plus_one", "batched")
        ],
        Target(
            "lake rows != state at event time",
            metrics["lake"]["disagree_with_event_time"],
            "<=",
            0,
            "rows",
        ),
        *[
            Target(f"checkout p99 ({n})", metrics[n]["checkout_p99_ms"], "info", 0, "ms")
            for n in ("baseline", *STRATEGIES)
        ],
    ]
    lines = [
        "| strategy | wall s | events/s | API calls | source DB queries | 429s | checkout p50/p99 ms | rows != event-time state |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in ("baseline", *STRATEGIES):
        m = metrics[n]
        lines.append(
            f"| {n} | {m.get('wall_s', '—')} | {m.get('events_per_s', '—')} | {m.get('api_calls', '—')} | "
            f"{m.get('source_db_queries', '—')} | {m.get('http_429', '—')} | "
            f"{m['checkout_p50_ms']}/{m['checkout_p99_ms']} | {m.get('disagree_with_event_time', '—')} |"
        )
    r.notes.append("per strategy:\n\n" + "\n".join(lines))
    return [r]
