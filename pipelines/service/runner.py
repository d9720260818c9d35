"""``changelake run``: land, compact, refresh the catalog and maintain the lake, all day.

Stages (``supervisor``), each retried with backoff on failure while the others go on:
* ``land``: the lander in follow mode (``pipelines.bronze.land``); every landed batch updates
  the metrics, marks its tables dirty and wakes ``compact``;
* ``compact``: woken by landings (not a timer; at most one round per ``compact_min_interval_s``)
  it compacts the dirty tables and rewrites the catalog when a snapshot changed. A table is
  dirtied by its rows landing and by a transaction END naming it landing (its rows' END may
  come after them, in a later batch); it stays dirty until a compaction changed it with
  nothing landed for it meanwhile;
* ``observe``: freshness latencies of the landed batches, slot lag and the status document,
  every ~2 s;
* ``report``: the runless Dagster events (bronze, then silver) every ``report_every_s``, in a
  stage of its own: a fresh process's first report loads Dagster (tens of seconds on a busy
  machine), which must not hold the status document or the latencies back;
* ``maintain``: silver retention, a catalog rewrite and (Iceberg) the orphan-file sweep every
  ``maintenance_every_s``;
* ``publish`` (with ``publish_every_s`` > 0): the new bronze batches and silver snapshots into
  the lake's Iceberg tables (``pipelines.iceberg.publish``), exactly once, that often.
Exactly once comes from the lander and compaction protocols themselves, so SIGKILL at any
moment loses and duplicates nothing; SIGTERM/SIGINT stop every stage after its current step.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import lakeformat
from pipelines.bronze.lander import LandingResult
from pipelines.bronze.writer import WrittenBatch
from pipelines.config import Settings
from pipelines.landing import land
from pipelines.naming import QualifiedName
from pipelines.service.freshness import Freshness
from pipelines.service.metrics import Metrics
from pipelines.service.state import run_lock, write_status
from pipelines.service.supervisor import Stage, StageState, Supervisor
from pipelines.stack.reach import wait_reachable

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    tables: Sequence[QualifiedName] | None = None  # default: every captured table
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9464  # None: no endpoint; 0: any free port
    compact_min_interval_s: float = 1.0
    maintenance_every_s: float = 600.0
    report_every_s: float = 30.0
    report_dagster: bool = True
    publish_every_s: float = 0.0  # 0: no publish stage
    stop_timeout_s: float = 8.0


@dataclass
class RunSummary:
    seconds: float = 0.0
    stopped_by: str | None = None
    stages: dict[str, dict] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    metrics_port: int | None = None
    unfinished: list[str] = field(default_factory=list)

    def line(self) -> str:
        f = self.figures
        failures = sum(s["failures"] for s in self.stages.values())
        why = f"stopped by {self.stopped_by}: " if self.stopped_by else ""
        return (
            f"{why}ran {self.seconds:.1f}s; landed {f.get('events', 0):,} events "
            f"({f.get('records', 0):,} records), quarantined {f.get('quarantined', 0):,}; "
            f"{f.get('compactions', 0):,} snapshot(s), {f.get('catalog_writes', 0):,} catalog "
            f"write(s); {failures} stage failure(s)"
        )


class Service:
    """The stages and the state they share."""

    def __init__(self, settings: Settings, opts: RunOptions) -> None:
        self.settings, self.opts = settings, opts
        self.lake = settings.lake_root
        self.tables = list(opts.tables or settings.captured)
        self.metrics = Metrics()
        self.started = time.time()
        self.fresh = Freshness(self.tables, since=self.started)
        # batches waiting for the freshness observer; each holds its rows' timing columns, so
        # the queue is bounded in batches (a full queue skips one batch's latencies, says so)
        self.landed: queue.Queue[tuple[WrittenBatch, float]] = queue.Queue(maxsize=2_000)
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.dirty: dict[str, int] = {str(t): 1 for t in self.tables}  # compact once at start
        self.by_collection = {t.data_collection: str(t) for t in self.tables}
        self.gen = 1
        self.interval = LandingResult()  # landed since the last Dagster report
        self.compacted: list = []  # compaction results since the last Dagster report
        self.last_round = 0.0
        self.stages: dict[str, StageState] = {}
        self.land_stage = Stage("land", self.land_step, pause_s=0.5)

    # --- land --------------------------------------------------------------------------------
    def on_batch(self, w: WrittenBatch) -> None:
        """Called by the lander (its thread) for each batch landed whole."""
        now = time.time()
        self.metrics.landed(w.rows, w.batch.last - w.batch.first + 1, w.quarantined)
        ended = [self.by_collection[c] for c in w.ended_collections() if c in self.by_collection]
        with self.lock:
            self.gen += 1
            for table in (*w.rows, *ended):
                self.dirty[table] = self.gen
            r = self.interval
            r.files += len(w.paths)
            r.quarantined += w.quarantined
            for table, n in w.rows.items():
                r.per_table[table] = r.per_table.get(table, 0) + n
                r.events += n
            key = f"{w.batch.topic}[{w.batch.partition}]"
            r.offsets[key] = (r.offsets.get(key, (w.batch.first, 0))[0], w.batch.last)
        try:
            self.landed.put_nowait((w, now))
        except queue.Full:
            log.warning("freshness queue full: latencies of one batch not measured")
        if w.rows or w.transactions:
            self.wake.set()
        self.land_stage.beat()

    def land_step(self, stop: threading.Event) -> None:
        # kafka-python's bootstrap blocks for 30 s or more and ignores the stop request: wait
        # for the broker here instead, where SIGTERM is seen within 0.1 s
        if not wait_reachable(self.settings, "kafka", stop.is_set):
            return
        land(
            self.settings,
            tables=self.opts.tables,
            until_caught_up=False,
            stop=stop.is_set,
            on_batch=self.on_batch,
            on_lag=self._lag,
            progress=lambda m: log.info("land: %s", m),
        )

    def _lag(self, n: int) -> None:
        self.metrics.set_lag(n)
        self.land_stage.beat()

    # --- compact -----------------------------------------------------------------------------
    def _compact(self, table: str):  # noqa: ANN202 - see lakeformat.compact_table
        res = lakeformat.compact_table(self.settings, table)
        if res.changed:
            self.compacted.append(res)
        return res

    def _write_catalog(self) -> None:
        lakeformat.write_catalog(self.settings)

    def compact_step(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.wake.wait(0.5):
            pass
        if stop.is_set():
            return
        stop.wait(max(0.0, self.last_round + self.opts.compact_min_interval_s - time.monotonic()))
        self.wake.clear()
        self.last_round = time.monotonic()
        with self.lock:
            todo = dict(self.dirty)
        t0 = time.monotonic()
        changed = []
        for table, gen in sorted(todo.items()):
            if stop.is_set():
                break
            try:
                res = self._compact(table)
            except LookupError:  # no bronze for the table yet
                continue
            if res.changed:
                changed.append(table)
                with self.lock:
                    if self.dirty.get(table) == gen:
                        del self.dirty[table]
        if changed:
            self._write_catalog()
        self.metrics.compacted(time.monotonic() - t0, changed, bool(changed))

    # --- observe -----------------------------------------------------------------------------
    def observe_step(self, stop: threading.Event) -> None:
        from pipelines.stack.postgres import slot_lag_bytes

        deadline = time.monotonic() + 2.0
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                w, at = self.landed.get(timeout=0.2)
            except queue.Empty:
                continue
            c2b, c2q = self.fresh.observe(w, at)
            self.metrics.commit_to_bronze(c2b)
            self.metrics.commit_to_queryable(c2q)
        try:
            self.metrics.set_slot_lag(slot_lag_bytes(self.settings))
        except Exception:  # noqa: BLE001 - PostgreSQL restarting: the figure is just unknown
            self.metrics.set_slot_lag(None)
        write_status(self.lake, self.status())

    # --- report ------------------------------------------------------------------------------
    def report_step(self, stop: threading.Event) -> None:
        self.report()
        if stop.wait(self.opts.report_every_s):
            self.report()  # what landed since the last report, before the process ends

    def report(self) -> None:
        """Runless Dagster events for what landed and compacted since the last report."""
        if not self.opts.report_dagster:
            return
        from pipelines.defs.runless import report_compaction, report_landing

        with self.lock:
            landed, self.interval = self.interval, LandingResult()
            results, self.compacted = self.compacted, []
        tables = [t for t in self.tables if landed.per_table.get(str(t))]
        if tables:
            report_landing(self.settings, landed, tables, source="changelake run")
        if results:
            report_compaction(self.settings, results, source="changelake run")

    # --- maintain ----------------------------------------------------------------------------
    def maintain_step(self, stop: threading.Event) -> None:
        if stop.wait(self.opts.maintenance_every_s):
            return
        done = lakeformat.maintain(self.settings)
        log.info(
            "maintain: retention removed %d snapshot(s), %d orphan file(s)",
            done.snapshots,
            done.orphan_files,
        )

    # --- publish -----------------------------------------------------------------------------
    def publish_step(self, stop: threading.Event) -> None:
        from pipelines.iceberg.publish import publish_lake

        if stop.wait(self.opts.publish_every_s):
            return
        tables = None if self.opts.tables is None else list(self.opts.tables)
        report = publish_lake(self.settings, tables=tables)
        self.metrics.published(report.per_layer())
        log.info(
            "publish: %d row(s) in %d Iceberg snapshot(s), %.1fs",
            report.rows,
            report.snapshots,
            report.seconds,
        )

    # --- shared ------------------------------------------------------------------------------
    def on_stage(self, state: StageState) -> None:
        self.stages[state.name] = state
        self.metrics.stage(state.name, state.healthy, failed=not state.healthy)

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "lake": str(self.lake),
            "figures": dict(self.metrics.figures.__dict__),
            "stages": {n: s.as_dict() for n, s in self.stages.items()},
        }


def run_service(
    settings: Settings,
    opts: RunOptions | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> RunSummary:
    """Run until ``stop()`` is true (the CLI passes the SIGTERM/SIGINT request)."""
    opts = opts or RunOptions()
    summary = RunSummary()
    lake: Path = settings.lake_root
    with run_lock(lake):
        svc = Service(settings, opts)
        if opts.metrics_port is not None:
            summary.metrics_port = svc.metrics.serve(opts.metrics_host, opts.metrics_port)
        stages = [
            svc.land_stage,
            Stage("compact", svc.compact_step),
            Stage("observe", svc.observe_step),
            Stage("maintain", svc.maintain_step),
        ]
        if opts.report_dagster:
            stages.append(Stage("report", svc.report_step))
        if opts.publish_every_s > 0:
            stages.append(Stage("publish", svc.publish_step))
        sup = Supervisor(stages, svc.on_stage)
        sup.start()
        if on_start is not None:
            on_start(summary.metrics_port)
        t0 = time.monotonic()
        try:
            while not (stop is not None and stop()):
                time.sleep(0.2)
        finally:
            sup.stop.set()
            svc.wake.set()
            summary.unfinished = sup.join(opts.stop_timeout_s)
        summary.seconds = time.monotonic() - t0
        summary.stages = {n: s.as_dict() for n, s in svc.stages.items()}
        summary.figures = dict(svc.metrics.figures.__dict__)
    return summary
