"""The figures ``changelake run`` exposes: Prometheus series on 127.0.0.1, and the same figures
as a small JSON document that ``changelake status`` reads (``state.write_status``).

Series (all prefixed ``changelake_``):
* ``events_landed_total{table}``, ``records_consumed_total``, ``messages_quarantined_total``;
* ``consumer_lag_records``: Kafka records not landed yet; ``slot_lag_bytes``: WAL the
  replication slot still holds back;
* ``commit_to_bronze_seconds``: PostgreSQL commit -> event in bronze (per event);
* ``commit_to_queryable_seconds``: commit -> the transaction is whole in bronze, so the live
  views show it (per transaction, in commit order: the transaction-safe cut);
* ``compaction_seconds`` (per round), ``compactions_total{table}``, ``catalog_writes_total``;
* ``stage_up{stage}`` (1 healthy, 0 failing) and ``stage_failures_total{stage}``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60, 120, 300)


@dataclass
class Figures:
    """Plain totals kept beside the series (for the status document and the summary line)."""

    events: int = 0
    records: int = 0
    quarantined: int = 0
    lag: int | None = None
    slot_lag_bytes: int | None = None
    compactions: int = 0
    catalog_writes: int = 0
    iceberg_rows: int = 0
    iceberg_snapshots: int = 0
    queryable_p95_s: float | None = None
    per_table: dict[str, int] = field(default_factory=dict)


class Metrics:
    """One registry per service (not the global one), so tests can run several."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.events = Counter(
            "changelake_events_landed", "change events landed in bronze", ["table"], registry=r
        )
        self.records = Counter(
            "changelake_records_consumed", "Kafka records consumed and landed", registry=r
        )
        self.quarantined = Counter(
            "changelake_messages_quarantined", "messages landed in quarantine", registry=r
        )
        self.lag = Gauge("changelake_consumer_lag_records", "records not landed yet", registry=r)
        self.slot_lag = Gauge(
            "changelake_slot_lag_bytes", "WAL held back by the replication slot", registry=r
        )
        self.c2b = Histogram(
            "changelake_commit_to_bronze_seconds",
            "PostgreSQL commit to event landed in bronze",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.c2q = Histogram(
            "changelake_commit_to_queryable_seconds",
            "PostgreSQL commit to transaction visible in the live views",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compaction = Histogram(
            "changelake_compaction_seconds", "one compaction round", registry=r
        )
        self.compactions = Counter(
            "changelake_compactions", "silver snapshots written", ["table"], registry=r
        )
        self.catalog_writes = Counter("changelake_catalog_writes", "catalog rewrites", registry=r)
        self.iceberg_rows = Counter(
            "changelake_iceberg_published_rows", "rows published to Iceberg", ["layer"], registry=r
        )
        self.iceberg_snapshots = Counter(
            "changelake_iceberg_snapshots", "Iceberg snapshots committed", ["layer"], registry=r
        )
        self.stage_up = Gauge("changelake_stage_up", "1 healthy, 0 failing", ["stage"], registry=r)
        self.stage_failures = Counter(
            "changelake_stage_failures", "failed stage steps", ["stage"], registry=r
        )
        self.figures = Figures()
        self._recent_q: list[float] = []  # the last queryable latencies (status p95)
        self._lock = threading.Lock()

    def serve(self, host: str, port: int) -> int:
        """Start the exposition endpoint (a daemon thread); return the port it listens on."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_address[1]

    # --- updates, called from the stages -------------------------------------------------------
    def landed(self, per_table: dict[str, int], records: int, quarantined: int) -> None:
        with self._lock:
            for table, n in per_table.items():
                self.events.labels(table).inc(n)
                self.figures.events += n
                self.figures.per_table[table] = self.figures.per_table.get(table, 0) + n
            self.records.inc(records)
            self.figures.records += records
            self.quarantined.inc(quarantined)
            self.figures.quarantined += quarantined

    def set_lag(self, lag: int) -> None:
        self.lag.set(lag)
        self.figures.lag = lag

    def set_slot_lag(self, n: int | None) -> None:
        if n is not None:
            self.slot_lag.set(n)
        self.figures.slot_lag_bytes = n

    def commit_to_bronze(self, seconds: list[float]) -> None:
        for s in seconds:
            self.c2b.observe(max(s, 0.0))

    def commit_to_queryable(self, seconds: list[float]) -> None:
        with self._lock:
            for s in seconds:
                self.c2q.observe(max(s, 0.0))
            self._recent_q = (self._recent_q + seconds)[-2000:]
            if self._recent_q:
                ordered = sorted(self._recent_q)
                self.figures.queryable_p95_s = round(ordered[int(0.95 * (len(ordered) - 1))], 3)

    def compacted(self, seconds: float, changed: list[str], catalog: bool) -> None:
        self.compaction.observe(seconds)
        for t in changed:
            self.compactions.labels(t).inc()
        self.figures.compactions += len(changed)
        if catalog:
            self.catalog_writes.inc()
            self.figures.catalog_writes += 1

    def published(self, per_layer: dict[str, tuple[int, int]]) -> None:
        """Rows and snapshots one publish round committed, per layer (bronze, silver)."""
        for layer, (rows, snapshots) in per_layer.items():
            self.iceberg_rows.labels(layer).inc(rows)
            self.iceberg_snapshots.labels(layer).inc(snapshots)
            self.figures.iceberg_rows += rows
            self.figures.iceberg_snapshots += snapshots

    def stage(self, name: str, healthy: bool, failed: bool) -> None:
        self.stage_up.labels(name).set(1 if healthy else 0)
        if failed:
            self.stage_failures.labels(name).inc()
