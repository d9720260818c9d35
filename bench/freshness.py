"""P2 freshness on the shipped path: commit -> queryable through the live view of `changelake run`.

All real: pgbench (``-R``, rate-limited Poisson schedule) -> PostgreSQL -> Debezium -> Kafka ->
``changelake run`` (its own process, a fresh lake, exactly as deployed) -> the catalog's live view
``bench.fresh``. A prober in this process opens the catalog read-only, again and again, and notes
when each inserted row first shows in the live view (the time its query started: the row was
visible then). Per row: commit time ``_source_ts`` (PostgreSQL's clock, same machine), Kafka
timestamp ``_kafka_ts`` (Connect's producer), ``_ingested_at`` (the lander), first seen. Reported:
commit->queryable p50/p95/p99, and where the time goes: Debezium (commit->Kafka), landing
(Kafka->bronze), visibility (bronze->seen: the prober's query period and the transaction cut).
Also the service's own ``changelake_commit_to_queryable_seconds`` histogram, scraped at the end.
Runs at 1,000 tx/s (P2) and 100 tx/s (P2@100); ``BENCH_P2_RATE`` runs one other rate.

On the Iceberg lake (I5, ``bench.freshness_iceberg``) the same run with
``CHANGELAKE_LAKE_FORMAT=iceberg``: the prober reads the silver view of the DuckDB file over the
Iceberg tables, so a row is queryable once its compaction committed and the file was rewritten
(that lake has no live view over bronze), and bronze times come from Iceberg bronze.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from bench import pgload
from bench.common import Result, Target, percentile
from bench.freshness_lake import TABLE, Lake
from bench.lakegen import data_dir
from bench.stack import ensure_stack, stack_env
from pipelines.service import read_status

CAUGHT_UP_RECORDS = 10  # consumer lag (records) at which the backlog counts as landed
ROWS_PER_TX = 1  # one inserted row per pgbench transaction
RATES = (1000, 100)  # the brief's workload rate first; BENCH_P2_RATE runs another only
CHANGELAKE = str(Path(sys.executable).parent / "changelake")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prober(threading.Thread):
    """Polls the table's view; ``seen[id]`` = epoch seconds when the row first showed."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(daemon=True)
        self.lake, self.stop = lake, threading.Event()
        self.seen: dict[int, float] = {}
        self.polls, self.poll_s, self.errors = 0, 0.0, 0

    def run(self) -> None:
        top = 0
        while not self.stop.is_set():
            t0 = time.time()
            try:
                with self.lake.connect() as con:
                    rows = con.execute(
                        f"SELECT id FROM {self.lake.view} WHERE id > ?",  # noqa: S608
                        [top - 5000],  # commits interleave ids a little: look back
                    ).fetchall()
            except (duckdb.Error, OSError):
                self.errors += 1
                time.sleep(0.05)
                continue
            self.polls += 1
            self.poll_s += time.time() - t0
            for (i,) in rows:
                if i not in self.seen:
                    self.seen[i] = t0
                    top = max(top, i)


def _service(lake: Lake, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        **stack_env(),
        "CHANGELAKE_LAKE": str(lake.root),
        "CHANGELAKE_LAKE_FORMAT": lake.format,
        "CHANGELAKE_RUN_METRICS_PORT": str(port),
    }
    return subprocess.Popen(
        [CHANGELAKE, "run", "--table", str(TABLE), "--no-dagster"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def _wait_caught_up(lake: Path, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    """Until the service reports (status document) that it has landed the topic's backlog: the
    topic holds the earlier runs' events, and measuring while they land would time the backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"changelake run ended: {log.read_text()[-2000:]}")
        doc = read_status(lake)
        lag = doc["figures"]["lag"] if doc else None
        if lag is not None and lag <= CAUGHT_UP_RECORDS:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the service did not catch up within {timeout}s: {log.read_text()[-2000:]}")


def _wait_view(lake: Lake, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    """Until the service has landed the topic's backlog and the table's view answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"changelake run ended: {log.read_text()[-2000:]}")
        if lake.catalog.exists():
            try:
                with lake.connect() as con:
                    con.execute(f"SELECT count(*) FROM {lake.view}").fetchone()  # noqa: S608
                return
            except duckdb.Error:
                pass
        time.sleep(0.5)
    raise TimeoutError(f"no live view of {TABLE} after {timeout}s: {log.read_text()[-2000:]}")


def _seed(s) -> None:  # noqa: ANN001
    """One row, so a fresh lake gets a first snapshot (the live view needs a table to show)."""
    proc = pgload.start(s, 1, rate=5, clients=1, table=TABLE)
    pgload.finish(proc)


def _scrape_p95(port: int) -> float | None:
    """p95 from the service's own commit->queryable histogram (bucket upper bound)."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None
    buckets = [
        (float(le), float(n))
        for le, n in re.findall(
            rb'changelake_commit_to_queryable_seconds_bucket\{le="([^"]+)"\} (\S+)', body
        )
        if le != b"+Inf"
    ]
    total = re.search(rb"changelake_commit_to_queryable_seconds_count (\S+)", body)
    if not total or not float(total.group(1)):
        return None
    want = 0.95 * float(total.group(1))
    return next((le for le, n in buckets if n >= want), None)


def one_rate(
    rate: int, seconds: int, *, smoke: bool, command: str, lake_format: str = "parquet"
) -> Result:
    base = "P2" if lake_format == "parquet" else "I5"
    fig = base if rate == RATES[0] else f"{base}@{rate}"
    on = " on Iceberg" if lake_format == "iceberg" else ""
    r = Result(
        fig,
        f"freshness commit->queryable at {rate} tx/s (changelake run){on}",
        command,
        smoke=smoke,
    )
    s = ensure_stack(progress=None)
    lake = Lake(data_dir() / f"lake-{fig.lower()}-{int(time.time())}", lake_format)
    log = data_dir() / f"{lake.root.name}-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)  # a fresh machine has no bench data yet
    port = free_port()
    pgload.prepare(s)
    _seed(s)
    proc = _service(lake, port, log)
    prober = Prober(lake)
    pg = None
    try:
        _wait_view(lake, proc, log)
        _wait_caught_up(lake.root, proc, log)
        prober.start()
        time.sleep(2)  # the backlog is landed and queryable; measure from an idle pipeline
        start = datetime.now(UTC)
        load = pgload.start(s, seconds, rate=rate, clients=4, table=TABLE, rows_per_tx=ROWS_PER_TX)
        pg = pgload.finish(load, timeout=seconds + 120)
        deadline = time.monotonic() + 60
        committed = pg["transactions"] * ROWS_PER_TX
        while time.monotonic() < deadline and _unseen(lake, start, prober.seen, committed) > 0:
            time.sleep(0.5)
        service_p95 = _scrape_p95(port)
    finally:
        prober.stop.set()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    prober.join(10)
    lat = _latencies(lake, start, prober.seen)
    if not lat["e2e"]:
        r.notes.append(f"no events measured; service log {log}: " + log.read_text()[-1500:])
    shutil.rmtree(lake.root, ignore_errors=True)
    e2e = lat["e2e"]
    p95 = _r(percentile(e2e, 95))
    r.params = {
        "seconds": seconds,
        "target_rate_tx_s": rate,
        "pgbench_clients": 4,
        "rows_per_tx": ROWS_PER_TX,
        "lake_format": lake_format,
    }
    r.metrics = {
        "achieved_tx_s": round(pg["tps"]) if pg else None,
        "events_measured": len(e2e),
        "events_never_seen": lat["missing"],
        **{f"commit_to_queryable_p{q}_s": _r(percentile(e2e, q)) for q in (50, 95, 99)},
        **{f"{k}_p95_s": _r(percentile(lat[k], 95)) for k in ("debezium", "landing", "visibility")},
        **{f"{k}_p50_s": _r(percentile(lat[k], 50)) for k in ("debezium", "landing", "visibility")},
        "probe_polls": prober.polls,
        "probe_query_avg_s": _r(prober.poll_s / prober.polls) if prober.polls else None,
        "service_histogram_p95_le_s": service_p95,
        "service_exit_code": proc.returncode,
    }
    r.targets = [
        Target("commit->queryable p95", p95, "<=", 2, "s"),
        Target("achieved rate", round(pg["tps"]) if pg else None, ">=", rate, "tx/s"),
    ]
    if rate not in RATES:
        r.command = f"BENCH_P2_RATE={rate} {command}"
    read = "the silver view of the DuckDB file over the Iceberg tables" if on else "the live view"
    r.notes.append(
        "shipped path: `changelake run` in its own process; first-seen times from a prober "
        f"reading {read}; commit times from PostgreSQL"
    )
    return r


def run(  # noqa: ANN201
    seconds: int,
    *,
    smoke: bool = False,
    command: str = "",
    progress=print,  # noqa: ANN001
    lake_format: str = "parquet",
) -> list[Result]:
    env_rate = os.environ.get("BENCH_P2_RATE")
    rates = [int(env_rate)] if env_rate else ([RATES[0]] if smoke else list(RATES))
    return [
        one_rate(rate, seconds, smoke=smoke, command=command, lake_format=lake_format)
        for rate in rates
    ]


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _rows(lake: Lake, start: datetime) -> list[tuple]:
    source = lake.bronze()
    if source is None:
        return []
    with lake.engine() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            f"""SELECT id, epoch(_source_ts), epoch(_kafka_ts), epoch(_ingested_at)
               FROM {source} WHERE _source_ts >= ? AND _op = 'c'""",  # noqa: S608
            [start],
        ).fetchall()


def _unseen(lake: Lake, start: datetime, seen: dict[int, float], committed: int) -> int:
    """Rows of the measured load not seen yet: those bronze has and the prober has not seen,
    plus the committed ones bronze does not have yet (a loaded machine lands them late)."""
    rows = _rows(lake, start)
    return sum(1 for row in rows if row[0] not in seen) + max(committed - len(rows), 0)


def _latencies(lake: Lake, start: datetime, seen: dict[int, float]) -> dict:
    out: dict[str, list[float]] = {"e2e": [], "debezium": [], "landing": [], "visibility": []}
    missing = 0
    for i, commit, kafka, ingested in _rows(lake, start):
        at = seen.get(i)
        if at is None:
            missing += 1
            continue
        out["e2e"].append(at - commit)
        out["debezium"].append(kafka - commit)
        out["landing"].append(ingested - kafka)
        out["visibility"].append(at - ingested)
    return {**out, "missing": missing}
