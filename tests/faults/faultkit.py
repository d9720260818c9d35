"""Helpers of the fault suite: a private lake, the lander as a killable subprocess, topic
accounting (exactly once), silver-vs-PostgreSQL comparison and slot lag.

Everything here reads the real stack (PostgreSQL, Kafka, Debezium) and the real lake; nothing
is faked. The checks are written so that a lost, duplicated or invented event makes them fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, TopicPartition

from pipelines.bronze import landed_offsets
from pipelines.bronze.layout import list_lake
from pipelines.bronze.reader import files
from pipelines.config import REPO_ROOT, Settings
from pipelines.lakeformat import as_of as lake_as_of
from pipelines.lakeformat import live_silver
from pipelines.naming import QualifiedName, quote_ident

CRASH_POINTS = ("mid_write", "before_rename", "after_rename", "before_commit")


def lake_settings(stack, lake: Path, tables: list[QualifiedName], **extra) -> Settings:  # noqa: ANN001, ANN003
    """The session stack's settings with a private lake and only ``tables`` captured;
    ``extra``: other settings (``lake_format="iceberg"``)."""
    fields = stack.settings.model_dump()
    fields.update(lake=lake, tables=tuple(str(t) for t in tables), **extra)
    return Settings(**fields)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a subprocess build the same Settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, tuple):  # tables, outbox_tables, event_aggregates
            value = ",".join(value)
        env[f"CHANGELAKE_{name.upper()}"] = str(value)
    return env


@dataclass
class LanderRun:
    """One lander subprocess: how it ended and, if it finished, its LandingResult as JSON."""

    how: str  # "crash_at:<point>", "sigkill", "clean"
    returncode: int
    result: dict | None
    stderr_tail: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class Lander:
    """``python -m pipelines.landing --follow`` as a subprocess; stderr collected by a thread so
    the suite can wait until it is really landing (past imports and Kafka bootstrap)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def wait_landing(self, timeout: float = 60) -> bool:
        """Until the landing loop reports progress (True) or the process ended (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(" events landed, " in line for line in list(self.err)):  # progress.Meter
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.2)
        raise AssertionError(f"lander not landing after {timeout}s: {''.join(self.err)[-2000:]}")


def start_lander(
    settings: Settings, *, crash_at: str | None = None, skip: int = 0, max_seconds: float = 60
) -> Lander:
    """Start the lander subprocess (optionally with a crash point)."""
    env = settings_env(settings)
    if crash_at:
        env.update(CHANGELAKE_CRASH_AT=crash_at, CHANGELAKE_CRASH_SKIP=str(skip))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.landing", "--follow", "--max-seconds", str(max_seconds)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Lander(proc)


def finish_lander(lander: Lander, how: str, *, timeout: float = 120) -> LanderRun:
    """Wait for the subprocess; parse its JSON result when it ended normally."""
    proc = lander.proc
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"lander hung: {''.join(lander.err)[-2000:]}") from None
    lander._reader.join(timeout=10)
    out = proc.stdout.read()
    result = None
    if proc.returncode == 0 and out.strip():
        result = json.loads(out.strip().splitlines()[-1])
    return LanderRun(how, proc.returncode, result, "".join(lander.err)[-3000:])


def sigkill(lander: Lander) -> None:
    """SIGKILL the lander we started (by its own pid), if it still runs."""
    if lander.proc.poll() is None:
        os.kill(lander.pid, signal.SIGKILL)


# --- Kafka: what the topics hold --------------------------------------------------------------


@dataclass
class TopicContent:
    """Offsets of one topic-partition: all of them and which are tombstones."""

    offsets: list[int] = field(default_factory=list)
    tombstones: set[int] = field(default_factory=set)


def read_topics(settings: Settings, topics: list[str]) -> dict[tuple[str, int], TopicContent]:
    """Every record's offset (values dropped at once: big rows must not pile up in memory)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.max_message_bytes + 1024 * 1024,
        fetch_max_bytes=settings.max_message_bytes + 1024 * 1024,
    )
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = {(tp.topic, tp.partition): TopicContent() for tp in tps}
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "reading topics took over 120 s"
            for tp, recs in consumer.poll(timeout_ms=1000).items():
                c = out[(tp.topic, tp.partition)]
                for r in recs:
                    if r.offset >= end[tp]:
                        continue
                    c.offsets.append(r.offset)
                    if r.value is None:
                        c.tombstones.add(r.offset)
        return out
    finally:
        consumer.close()


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []]
        return {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


# --- the lake: what landed (either format: ``settings.lake_format``) ------------------------


def crash_points(settings: Settings) -> tuple[str, ...]:
    """The lander's ``CHANGELAKE_CRASH_AT`` points in the lake's format: the Parquet lake's
    file protocol, or the states of the Iceberg commit protocol every batch passes through
    (SKIPPED only follows a replay and CONFLICT only a concurrent committer: one lander meets
    neither for sure; the two-lander stack test covers conflicts)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.commit import CommitState

        every_batch = (CommitState.CHECKING, CommitState.STAGED, CommitState.COMMITTED)
        return tuple(f"land_{s.value}" for s in every_batch)
    return CRASH_POINTS


def landed(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """Highest landed offset per partition, as the lander itself resumes from it."""
    from pipelines.landing import store_for

    store = store_for(settings)
    if store is None:
        return landed_offsets(settings.lake_root)
    return store.landed(topics)


def _iceberg_tables(settings: Settings, namespace: str):  # noqa: ANN202
    from pipelines.iceberg.catalog import open_catalog

    catalog = open_catalog(settings, create_namespaces=False)
    return [catalog.load_table(ident) for ident in catalog.list_tables(namespace)]


def lake_coordinates(settings: Settings) -> Counter:
    """(topic, partition, offset) of every bronze row and quarantined message, counted."""
    got: Counter = Counter()
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.commit import BRONZE_COORDINATES, QUARANTINE_COORDINATES
        from pipelines.iceberg.names import BRONZE, QUARANTINE

        for namespace, cols in ((BRONZE, BRONZE_COORDINATES), (QUARANTINE, QUARANTINE_COORDINATES)):
            for table in _iceberg_tables(settings, namespace):
                t = table.scan(selected_fields=cols).to_arrow()
                got.update(zip(*(t.column(c).to_pylist() for c in cols), strict=True))
        return got
    lake = settings.lake_root
    listing = list_lake(lake)
    assert not listing.incomplete, f"incomplete batches left: {list(listing.incomplete)[:3]}"
    assert not listing.temp_files, f"temp files left: {listing.temp_files[:3]}"
    for path in sorted((lake / "bronze").rglob("*.parquet")):
        t = pq.read_table(path, columns=["_topic", "_partition", "_offset"])
        got.update(zip(*(t.column(i).to_pylist() for i in range(3)), strict=True))
    for path in sorted((lake / "quarantine").rglob("*.parquet")):
        t = pq.read_table(path, columns=["topic", "partition", "offset"])
        got.update(zip(*(t.column(i).to_pylist() for i in range(3)), strict=True))
    return got


def _empty(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], pa.null()) for c in columns})


def _iceberg_rows(settings: Settings, layer: str, name, columns: list[str]) -> pa.Table:  # noqa: ANN001
    from pipelines.iceberg.catalog import open_catalog
    from pipelines.iceberg.sources import maybe_table

    table = maybe_table(open_catalog(settings, create_namespaces=False), layer, name)
    if table is None:
        return _empty(columns)
    return table.scan(selected_fields=tuple(columns)).to_arrow()


def _parquet_rows(paths: list, columns: list[str]) -> pa.Table:
    if not paths:
        return _empty(columns)
    tables = [pq.read_table(p, columns=columns) for p in paths]
    return pa.concat_tables(tables, promote_options="permissive")


def bronze_rows(settings: Settings, table: QualifiedName, columns: list[str]) -> pa.Table:
    """``columns`` of every bronze event of ``table`` (empty before anything landed)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.names import BRONZE

        return _iceberg_rows(settings, BRONZE, table, columns)
    return _parquet_rows(files(settings.lake_root, table), columns)


def quarantine_rows(settings: Settings, topic: str, columns: list[str]) -> pa.Table:
    """``columns`` of every message of ``topic`` in quarantine (raw ``value``, ``error``...)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.names import QUARANTINE

        return _iceberg_rows(settings, QUARANTINE, topic, columns)
    from pipelines.bronze.layout import quarantine_dir

    return _parquet_rows(
        sorted(quarantine_dir(settings.lake_root, topic).rglob("*.parquet")), columns
    )


@dataclass
class OnceReport:
    """Result of the exactly-once accounting of some topics against the lake."""

    offsets: int = 0  # non-tombstone records accounted for
    tombstones: int = 0
    duplicated: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    tombstones_landed: list = field(default_factory=list)
    invented: list = field(default_factory=list)


def exactly_once(
    settings: Settings, topics: list[str], growing: tuple[str, ...] = ()
) -> OnceReport:
    """Every non-tombstone offset exactly once in bronze or quarantine; tombstones never.

    ``missing`` also lists offsets past the landed offset that exist in the topic (callers land
    until caught up first, so anything there is a gap), except for ``growing`` topics (the
    transaction topic keeps taking heartbeat transactions): those are checked up to the landed
    offset.
    """
    content = read_topics(settings, topics)
    got = lake_coordinates(settings)
    landed_at = landed(settings, topics)
    rep = OnceReport()
    for (topic, part), c in content.items():
        if topic in growing:
            cut = landed_at.get((topic, part), -1)
            c.offsets = [o for o in c.offsets if o <= cut]
            c.tombstones = {o for o in c.tombstones if o <= cut}
        expected = set(c.offsets) - c.tombstones
        rep.offsets += len(expected)
        rep.tombstones += len(c.tombstones)
        have = {o: n for (t, p, o), n in got.items() if t == topic and p == part}
        rep.duplicated.update({(topic, part, o): n for o, n in have.items() if n > 1})
        rep.missing += [(topic, part, o) for o in sorted(expected - set(have))][:20]
        rep.tombstones_landed += [(topic, part, o) for o in sorted(c.tombstones & set(have))]
        rep.invented += [(topic, part, o) for o in sorted(set(have) - set(c.offsets))]
        if c.offsets:
            last = landed_at.get((topic, part), -1)
            if last < max(c.offsets):
                rep.missing.append((topic, part, f"landed only up to {last} of {max(c.offsets)}"))
    return rep


def bronze_duplicates(settings: Settings, table: QualifiedName, key: list[str]) -> int:
    """Change events present more than once in bronze (same key, LSNs, op): Connect replays."""
    cols = [*key, "_commit_lsn", "_lsn", "_op"]
    ev = bronze_rows(settings, table, cols)
    if ev.num_rows == 0:
        return 0
    k = ", ".join(quote_ident(c) for c in cols)
    with duckdb.connect() as con:
        con.execute("SET threads = 1")
        con.register("ev", ev)
        n = con.execute(
            f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {k} FROM ev)) FROM ev"  # noqa: S608
        ).fetchone()[0]
    return int(n)


# --- silver vs PostgreSQL -----------------------------------------------------------------


def pg_table(conn, table: QualifiedName) -> tuple[list[str], pa.Table]:  # noqa: ANN001
    """Current PostgreSQL rows of ``table`` (catalog column order) as Arrow.

    json/jsonb are read as their text (what Debezium ships and silver stores)."""
    attrs = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table.sql,),
    ).fetchall()
    cols = [a for a, _ in attrs]
    exprs = [
        f"{quote_ident(a)}::text" if t in ("json", "jsonb") else quote_ident(a) for a, t in attrs
    ]
    conn.execute("SET TimeZone = 'UTC'")
    rows = conn.execute(f"SELECT {', '.join(exprs)} FROM {table.sql}").fetchall()  # noqa: S608
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    return cols, pa.table(data) if rows else pa.table({c: pa.array([], pa.null()) for c in cols})


@dataclass
class SilverDiff:
    pg_rows: int
    silver_rows: int
    only_pg: list
    only_silver: list
    silver_dup_keys: int


def silver_vs_pg(
    conn,  # noqa: ANN001
    settings: Settings,
    table: QualifiedName,
    key: list[str],
    renamed: dict[str, str] | None = None,
) -> SilverDiff:
    """Row-for-row comparison (EXCEPT ALL both ways) of the lake's live silver rows (either
    format, ``lakeformat.live_silver``) on PostgreSQL's current columns.

    ``renamed`` maps a PostgreSQL column name to the name it has in the lake, where Debezium
    changes it (it unquotes a name that starts and ends with a double quote)."""
    cols, pg = pg_table(conn, table)
    renamed = renamed or {}
    sel = ", ".join(f"{quote_ident(renamed.get(c, c))} AS {quote_ident(c)}" for c in cols)
    k = ", ".join(quote_ident(c) for c in key)
    with live_silver(settings, table) as (con, src):
        assert src is not None, f"{table}: no silver yet"
        con.execute("SET threads = 1; SET TimeZone = 'UTC'")
        con.register("pg_rows", pg)
        con.execute(f"CREATE OR REPLACE TEMP VIEW silver_rows AS SELECT {sel} FROM {src}")  # noqa: S608
        only_pg = con.execute(
            "SELECT * FROM pg_rows EXCEPT ALL SELECT * FROM silver_rows LIMIT 5"
        ).fetchall()
        only_silver = con.execute(
            "SELECT * FROM silver_rows EXCEPT ALL SELECT * FROM pg_rows LIMIT 5"
        ).fetchall()
        n_silver = con.execute("SELECT count(*) FROM silver_rows").fetchone()[0]
        dups = con.execute(
            f"SELECT count(*) - count(DISTINCT ({k})) FROM silver_rows"  # noqa: S608
        ).fetchone()[0]
    return SilverDiff(pg.num_rows, n_silver, only_pg, only_silver, int(dups))


# --- PostgreSQL: replication slot ------------------------------------------------------------


def slot_position(conn, slot: str) -> tuple[int, int]:  # noqa: ANN001
    """(current WAL LSN, slot confirmed_flush_lsn) as integers."""
    cur, flushed = conn.execute(
        "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, confirmed_flush_lsn - '0/0'::pg_lsn "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return int(cur), int(flushed)


def wait_streamed(conn, slot: str, timeout: float = 120) -> float:  # noqa: ANN001
    """Wait until Debezium confirmed everything written so far (Kafka has it); seconds taken."""
    t0 = time.monotonic()
    target, _ = slot_position(conn, slot)
    while True:
        _, flushed = slot_position(conn, slot)
        if flushed >= target:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"slot {slot} confirmed {flushed} < {target} after {timeout}s")
        time.sleep(0.5)


def files_outside(root: Path, lake: Path) -> list[Path]:
    """Files under ``root`` that are not inside ``lake`` (resolved, symlinks followed)."""
    lake = lake.resolve()
    out = []
    for p in root.rglob("*"):
        rp = p.resolve()
        if p.is_file() and lake not in rp.parents:
            out.append(p)
    return out


# --- figures ----------------------------------------------------------------------------------

# Figures of the last run: run output, so an untracked file (.changelake/ is git-ignored), never
# one a test run would dirty in the checkout.
FIGURES = REPO_ROOT / ".changelake" / "faults.json"


def record_figures(section: str, data: dict) -> None:
    """Merge one test's figures into .changelake/faults.json (each test owns a section)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(FIGURES.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        doc = {}
    doc[section] = data
    doc["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = FIGURES.with_name(f".{FIGURES.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(FIGURES)


def as_of_vs_current(settings: Settings, table: QualifiedName) -> tuple[int, int]:
    """(rows only in ``as_of(now)``, rows only in live silver), either format: both must be 0."""
    from datetime import UTC, datetime

    now = lake_as_of(settings, table, datetime.now(UTC))
    with live_silver(settings, table) as (con, src):
        assert src is not None, f"{table}: no silver yet"
        con.execute("SET threads = 1; SET TimeZone = 'UTC'")
        con.register("asof_rows", now)
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]  # noqa: S608
        sel = ", ".join(quote_ident(c) for c in cols if c in now.column_names)
        a = con.execute(
            f"SELECT count(*) FROM (SELECT {sel} FROM asof_rows "  # noqa: S608
            f"EXCEPT ALL SELECT {sel} FROM {src})"
        ).fetchone()[0]
        b = con.execute(
            f"SELECT count(*) FROM (SELECT {sel} FROM {src} "  # noqa: S608
            f"EXCEPT ALL SELECT {sel} FROM asof_rows)"
        ).fetchone()[0]
    return int(a), int(b)
