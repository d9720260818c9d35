"""``enrich``: thin notifications -> full order rows by the configured strategy, with counts.

``chunks`` are tables of ``THIN_SCHEMA`` (``thin.parse`` of what ``source.chunks`` read); the
callback strategies pull them lazily (backpressure), ``lake`` reads them all and answers from
the lake in one query.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Settings
from pipelines.enrich.callbacks import CallStats, batched, n_plus_one
from pipelines.enrich.lake import lake_rows
from pipelines.enrich.thin import THIN_SCHEMA

Strategy = Literal["n_plus_one", "batched", "lake"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class Enrichment:
    strategy: str
    rows: pa.Table
    calls: int  # HTTP requests to the order API, retries included
    rejected_429: int
    retries: int
    seconds: float

    @property
    def unresolved(self) -> int:
        """Events that came back without an order state (404, or not landed for ``lake``)."""
        return self.rows.num_rows - pc.count(self.rows.column("status")).as_py()


def api_url(settings: Settings) -> str:
    """The order API ``changelake up`` serves."""
    return f"http://{settings.bind_host}:{settings.order_api_port}"


def enrich(
    settings: Settings,
    chunks: Iterable[pa.Table],
    *,
    strategy: str | None = None,
    base_url: str | None = None,
) -> Enrichment:
    chosen = strategy or settings.enrich_strategy
    if chosen not in STRATEGIES:
        raise ValueError(f"unknown strategy {chosen!r}; choose from {', '.join(STRATEGIES)}")
    stats, t0 = CallStats(), time.monotonic()
    if chosen == "lake":
        events = pa.concat_tables([THIN_SCHEMA.empty_table(), *chunks])
        rows = lake_rows(settings, events)
    else:
        fn = n_plus_one if chosen == "n_plus_one" else batched
        rows = fn(settings, base_url or api_url(settings), chunks, stats)
    return Enrichment(
        chosen, rows, stats.calls, stats.rejected_429, stats.retries, time.monotonic() - t0
    )
