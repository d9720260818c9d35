"""The parts of ``changelake run`` that need no stack: supervised stages, the metrics endpoint,
one run per lake, and the commit->queryable tracker over real bronze files."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from test_silver_support import METADATA, SOURCE, T0, TABLE

from pipelines.bronze.layout import TRANSACTIONS, BatchId
from pipelines.bronze.writer import write_batch
from pipelines.config import Settings
from pipelines.decode import DecodedBatch
from pipelines.decode.special import QUARANTINE_SCHEMA, TRANSACTIONS_SCHEMA
from pipelines.iceberg.landing import IcebergStore
from pipelines.service.freshness import Freshness
from pipelines.service.metrics import Metrics
from pipelines.service.state import AlreadyRunning, run_lock, running_pid
from pipelines.service.supervisor import Stage, Supervisor

pytestmark = pytest.mark.unit


def test_a_failing_stage_is_retried_with_backoff_while_the_others_go_on() -> None:
    calls = {"bad": 0, "good": 0}
    seen = []

    def bad(stop: threading.Event) -> None:
        calls["bad"] += 1
        if calls["bad"] < 3:
            raise ConnectionError("broker down\nsecond line")

    def good(stop: threading.Event) -> None:
        calls["good"] += 1
        stop.wait(0.05)

    sup = Supervisor(
        [Stage("bad", bad, pause_s=0.05), Stage("good", good)],
        lambda st: seen.append((st.name, st.healthy)),
    )
    sup.start()
    deadline = time.monotonic() + 10
    while calls["bad"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    sup.stop.set()
    assert sup.join(5) == []
    bad_state = sup.stages[0].state
    assert bad_state.failures == 2 and bad_state.healthy
    assert bad_state.last_error == "ConnectionError: broker down"
    assert calls["good"] > 20  # it kept working through the 1 s + 2 s backoff of the other
    assert ("bad", False) in seen and seen[-1] != ("bad", False)


def test_metrics_endpoint_serves_the_series_on_loopback() -> None:
    m = Metrics()
    port = m.serve("127.0.0.1", 0)
    m.landed({"s.t": 5}, 7, 1)
    m.set_lag(3)
    m.commit_to_queryable([0.4, 1.2])
    m.stage("land", healthy=False, failed=True)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for series in (
        'changelake_events_landed_total{table="s.t"} 5.0',
        "changelake_records_consumed_total 7.0",
        "changelake_messages_quarantined_total 1.0",
        "changelake_consumer_lag_records 3.0",
        "changelake_commit_to_queryable_seconds_count 2.0",
        'changelake_stage_up{stage="land"} 0.0',
        'changelake_stage_failures_total{stage="land"} 1.0',
    ):
        assert series in body
    assert m.figures.queryable_p95_s == 0.4  # nearest rank of two samples


def test_a_second_run_on_the_same_lake_refuses(tmp_path: Path) -> None:
    assert running_pid(tmp_path) is None
    with run_lock(tmp_path):
        code = (
            "import sys; from pathlib import Path; from pipelines.service.state import run_lock\n"
            f"with run_lock(Path({str(tmp_path)!r})): pass"
        )
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.returncode != 0 and "AlreadyRunning" in other.stderr
        assert running_pid(tmp_path) is not None
        with pytest.raises(AlreadyRunning, match="already serves the lake"), run_lock(tmp_path):
            pass
    assert running_pid(tmp_path) is None


def _events(tx_id: int, n: int, commit: datetime, first_offset: int) -> pa.Table:
    rows = []
    for i in range(n):
        rows.append(
            {f.name: None for f in [*SOURCE, *METADATA]}
            | {
                "k": first_offset + i,
                "_op": "c",
                "_source_ts": commit,
                "_tx_id": tx_id,
                "_tx_order": i + 1,
                "_topic": "cl.s.t",
                "_partition": 0,
                "_offset": first_offset + i,
                "_kafka_ts": T0,
                "_ingested_at": T0,
            }
        )
    return pa.Table.from_pylist(rows, schema=pa.schema([*SOURCE, *METADATA]))


def _end(tx_id: int, n: int, commit: datetime, offset: int) -> pa.Table:
    row = {
        "status": "END",
        "id": f"{tx_id}:{1000 + tx_id}",
        "event_count": n,
        "data_collections": [{"data_collection": "s.t", "event_count": n}],
        "ts": commit,
        "_topic": "cl.transaction",
        "_partition": 0,
        "_offset": offset,
        "_kafka_ts": T0,
        "_ingested_at": T0,
    }
    return pa.Table.from_pylist([row], schema=TRANSACTIONS_SCHEMA)


@pytest.mark.parametrize("lake_format", ["parquet", "iceberg"])
def test_transactions_become_queryable_in_commit_order_when_whole(
    tmp_path: Path, lake_format: str
) -> None:
    now = datetime.now(UTC)
    fresh = Freshness([TABLE], since=(now - timedelta(minutes=1)).timestamp())
    c1, c2 = now - timedelta(seconds=3), now - timedelta(seconds=2)
    settings = Settings(_env_file=None, home=tmp_path, lake_format=lake_format)
    store = IcebergStore(settings, {"cl.s.t": TABLE, "cl.transaction": TRANSACTIONS})

    def land(batch: BatchId, tables: dict, tx: pa.Table | None, at: float):  # noqa: ANN202
        if lake_format == "parquet":
            written = write_batch(tmp_path, batch, tables, tx, None, T0)
        else:  # what the Iceberg store committed carries the same columns
            decoded = DecodedBatch(tables, tx, QUARANTINE_SCHEMA.empty_table())
            written = store.write(batch, decoded, T0)
        return fresh.observe(written, at)

    t = now.timestamp()
    # the second transaction's END and events land before the first one's events
    assert land(
        BatchId("cl.transaction", 0, 0, 1),
        {},
        pa.concat_tables([_end(1, 2, c1, 0), _end(2, 1, c2, 1)]),
        t,
    ) == ([], [])
    c2b, c2q = land(BatchId("cl.s.t", 0, 0, 0), {TABLE: _events(2, 1, c2, 0)}, None, t + 1)
    assert c2q == [] and c2b == [pytest.approx(3.0, abs=1e-3)]  # waits for the first
    c2b, c2q = land(BatchId("cl.s.t", 0, 1, 2), {TABLE: _events(1, 2, c1, 1)}, None, t + 2)
    assert c2q == [pytest.approx(5.0, abs=1e-3), pytest.approx(4.0, abs=1e-3)]
    assert not fresh.pending and not fresh.early


def test_status_shows_the_running_service_figures_and_stage_health(tmp_path: Path) -> None:
    from rich.console import Console

    from pipelines.cli.lakestatus import service_table
    from pipelines.service import read_status
    from pipelines.service.state import write_status

    assert read_status(tmp_path) is None  # no run: nothing, even with a stale document
    doc = {
        "pid": 123,
        "started": 1000.0,
        "updated": 1090.0,
        "figures": {"events": 4200, "quarantined": 1, "lag": 7, "queryable_p95_s": 0.8},
        "stages": {
            "land": {"healthy": True, "failures": 0, "last_error": None},
            "compact": {"healthy": False, "failures": 3, "last_error": "OSError: disk full"},
        },
    }
    with run_lock(tmp_path):
        write_status(tmp_path, doc)
        assert read_status(tmp_path) == doc
        console = Console(width=200, record=True)
        console.print(service_table(read_status(tmp_path)))
    text = console.export_text()
    for part in ("pid 123", "1m 30s", "4,200", "0.80s", "failing (OSError: disk full)"):
        assert part in text, part
    assert read_status(tmp_path) is None
    assert "not running" in service_table(None)


def test_run_with_kafka_down_stops_on_sigterm_at_once(tmp_path: Path) -> None:
    """kafka-python's bootstrap cannot be interrupted; the land stage waits for the broker with
    probes instead, so SIGTERM ends ``run`` promptly even when Kafka never came up."""
    import os
    import signal

    from bench.freshness import CHANGELAKE, free_port

    env = os.environ | {
        "CHANGELAKE_HOME": str(tmp_path),
        "CHANGELAKE_KAFKA_PORT": str(free_port()),  # nothing listens there
        "CHANGELAKE_PG_PORT": str(free_port()),
        "CHANGELAKE_RUN_METRICS_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        [CHANGELAKE, "run", "--no-dagster"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "lake" / ".run-status.json").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(1.0)  # the land stage is now waiting for the broker
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 0, err[-2000:]
    assert took < 3, f"SIGTERM took {took:.1f}s"
    assert "not reachable" in err and "still busy" not in err, err[-2000:]


def test_the_kafka_probe_uses_the_configured_bootstrap_servers() -> None:
    from pipelines.config import Settings
    from pipelines.stack.reach import address

    s = Settings(kafka_mode="external", kafka_bootstrap_servers="kafka-1.internal:9094,k2:9094")
    assert address(s, "kafka") == ("kafka-1.internal", 9094)
    s = Settings(connect_mode="external", connect_rest_url="https://connect.example:8443/")
    assert address(s, "connect") == ("connect.example", 8443)


@pytest.mark.parametrize("lake_format", ["parquet", "iceberg"])
def test_a_transaction_end_landing_after_its_rows_were_compacted_wakes_the_table_again(
    tmp_path: Path, lake_format: str
) -> None:
    """A compaction that ran between a transaction's rows and its END (another topic, so
    another batch) could not apply the rows; the END landing must make the table dirty again,
    or silver waits for the table's next rows, however long that is."""
    from bench.lakegen import TABLE as EVENTS
    from bench.lakegen import land_chunk
    from bench.synth import Chunk, Generator
    from pipelines.bronze.store import ParquetStore
    from pipelines.service.runner import RunOptions, Service

    settings = Settings(_env_file=None, home=tmp_path, lake_format=lake_format)
    gen = Generator(keys=100, tx_size=5)
    first = gen.chunk(0, 5)
    store = (
        ParquetStore(settings.lake_root)
        if lake_format == "parquet"
        else IcebergStore(settings, {first.table[0].topic: EVENTS, first.tx[0].topic: TRANSACTIONS})
    )
    svc = Service(
        settings, RunOptions(tables=[EVENTS], metrics_port=None, compact_min_interval_s=0)
    )
    stop = threading.Event()

    def land(chunk: Chunk) -> None:
        land_chunk(settings.lake_root, chunk, store=store, on_batch=svc.on_batch)

    land(gen.chunk(0, 10))  # two whole transactions
    late = gen.chunk(10, 5)
    land(Chunk(late.table, [], late.events))  # a third one's rows, its END not yet landed
    svc.compact_step(stop)
    assert [r.events_applied for r in svc.compacted] == [10]
    assert str(EVENTS) not in svc.dirty  # nothing more it can apply until the END lands
    land(Chunk([], late.tx, 0))
    assert str(EVENTS) in svc.dirty
    svc.compact_step(stop)
    assert [r.events_applied for r in svc.compacted] == [10, 5]
