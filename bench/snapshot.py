"""S1: an incremental snapshot of an N-row table added to a running pipeline (issue #13).

A table with ``events`` rows is created on the private stack, then added to
``CHANGELAKE_TABLES`` and registered exactly as ``changelake up`` does (``register_connector``:
the connector restarts on the new include list and an ``execute-snapshot`` signal is sent).
A concurrent writer keeps updating and deleting random rows while Debezium reads the table
chunk by chunk. Measured: signal → Debezium's ``COMPLETED`` notification (rows/s read by the
incremental snapshot), then landing the topic and compacting; at the end silver must equal
PostgreSQL (row count and the Dagster reconciliation fingerprint), concurrent writes included.
"""

from __future__ import annotations

import random
import threading
import time

import orjson
import psycopg
from kafka import KafkaConsumer, TopicPartition

from bench.common import Result, Target
from bench.lakegen import data_dir
from bench.stack import ensure_stack, settings
from pipelines.naming import QualifiedName

TABLE = QualifiedName("bench", "snap")
WRITER_TX_PER_S = 50


def run(events: int, *, smoke: bool = False, command: str = "", progress=print) -> list[Result]:  # noqa: ANN001
    r = Result("S1", f"incremental snapshot of a {events:,}-row table", command, smoke=smoke)
    r.params = {"rows": events, "writer_tx_per_s": WRITER_TX_PER_S}
    s = ensure_stack(progress=None)
    with psycopg.connect(s.pg_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE.sql}")
        conn.execute(
            f"CREATE TABLE {TABLE.sql} (id bigint PRIMARY KEY, v integer NOT NULL, "
            "note text, at timestamptz NOT NULL DEFAULT now())"
        )
        t = time.perf_counter()
        conn.execute(
            f"INSERT INTO {TABLE.sql} SELECT g, 0, md5(g::text) FROM generate_series(1, %s) g",  # noqa: S608
            (events,),
        )
        r.metrics["load_seconds"] = round(time.perf_counter() - t, 2)
    s = settings(tables=tuple(dict.fromkeys([*(str(q) for q in s.captured), str(TABLE)])))
    notes = _NotificationWatch(s)
    stop = threading.Event()
    writes = {"updates": 0, "deletes": 0}
    writer = threading.Thread(target=_writer, args=(s, events, stop, writes), daemon=True)
    from pipelines.stack.lifecycle import register_connector

    t0 = time.perf_counter()
    writer.start()
    register_connector(s)  # restarts the task, then signals the snapshot
    t_signal = time.perf_counter()
    done = notes.wait_completed(timeout=120 + events / 500)
    t_done = time.perf_counter()
    stop.set()
    writer.join()
    snap = t_done - t_signal
    r.metrics |= {
        "register_seconds": round(t_signal - t0, 2),
        "snapshot_seconds": round(snap, 2),
        "snapshot_rows_per_s": round(events / snap) if done else None,
        "concurrent_updates": writes["updates"],
        "concurrent_deletes": writes["deletes"],
        "completed_notification": done,
    }
    progress(f"S1: snapshot of {events:,} rows in {snap:.1f}s")
    r.metrics |= _land_and_compare(s, progress)
    r.targets = [
        Target("incremental snapshot rate", r.metrics["snapshot_rows_per_s"], "info", 0, "rows/s"),
        Target("silver equals PostgreSQL", float(r.metrics["silver_equals_pg"]), ">=", 1, ""),
    ]
    return [r]


def _writer(s, rows: int, stop: threading.Event, counts: dict) -> None:  # noqa: ANN001
    """Updates (and every tenth transaction a delete) of random rows, ~WRITER_TX_PER_S tx/s."""
    rng = random.Random(7)
    with psycopg.connect(s.pg_dsn(), autocommit=True) as conn:
        while not stop.is_set():
            key = rng.randint(1, rows)
            if rng.random() < 0.1:
                cur = conn.execute(f"DELETE FROM {TABLE.sql} WHERE id = %s", (key,))  # noqa: S608
                counts["deletes"] += cur.rowcount
            else:
                cur = conn.execute(f"UPDATE {TABLE.sql} SET v = v + 1 WHERE id = %s", (key,))  # noqa: S608
                counts["updates"] += cur.rowcount
            time.sleep(1 / WRITER_TX_PER_S)


class _NotificationWatch:
    """Debezium's notifications topic read from its end now: waits for the COMPLETED
    notification of an incremental snapshot."""

    def __init__(self, s) -> None:  # noqa: ANN001
        self.topic = f"{s.topic_prefix}.notifications"
        self.c = KafkaConsumer(bootstrap_servers=s.bootstrap_servers, enable_auto_commit=False)
        parts = self.c.partitions_for_topic(self.topic) or {0}
        self.tps = [TopicPartition(self.topic, p) for p in parts]
        self.c.assign(self.tps)
        self.c.seek_to_end(*self.tps)
        for tp in self.tps:
            self.c.position(tp)

    def wait_completed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for batch in self.c.poll(timeout_ms=1000).values():
                    for m in batch:
                        v = orjson.loads(m.value) if m.value else {}
                        body = v.get("payload", v)
                        if body.get("aggregate_type") == "Incremental Snapshot" and body.get(
                            "type"
                        ) in ("COMPLETED", "ABORTED"):
                            return body.get("type") == "COMPLETED"
            return False
        finally:
            self.c.close()


def _land_and_compare(s, progress) -> dict:  # noqa: ANN001
    from pipelines import silver
    from pipelines.bronze.lander import land
    from pipelines.config import Settings
    from pipelines.defs.reconcile import (
        duck_columns,
        duck_fingerprint,
        pg_columns,
        pg_fingerprint,
        plan_columns,
    )
    from pipelines.defs.stagemeta import current_files
    from pipelines.shop.demo import wait_until_streamed

    lake = data_dir() / "s1-lake"
    if lake.exists():
        import shutil

        shutil.rmtree(lake)
    ls = Settings(**(s.model_dump() | {"lake": lake, "tables": (str(TABLE),)}))
    wait_until_streamed(ls)
    t = time.perf_counter()
    res = land(ls, tables=[TABLE], until_caught_up=True)
    t_land = time.perf_counter() - t
    t = time.perf_counter()
    silver.compact(ls, TABLE, catalog=False)
    t_compact = time.perf_counter() - t
    files = current_files(ls, TABLE)
    with psycopg.connect(s.pg_dsn()) as conn:
        plan = plan_columns(pg_columns(conn, TABLE), duck_columns(files))
        equal = duck_fingerprint(files, plan.compared) == pg_fingerprint(conn, TABLE, plan.compared)
    progress(
        f"S1: landed {res.events:,} events in {t_land:.1f}s, silver equals PostgreSQL: {equal}"
    )
    return {
        "landed_events": res.events,
        "land_seconds": round(t_land, 2),
        "compact_seconds": round(t_compact, 2),
        "silver_equals_pg": equal,
    }
