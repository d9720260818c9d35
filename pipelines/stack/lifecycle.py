"""``up``, ``down``, ``restart_component`` and connector registration, for the native runtime.

``up`` is idempotent: each step checks before acting (jars by marker, initdb by PG_VERSION,
storage by meta.properties, processes by verified pid, connector by comparing its config), so a
second ``up`` on a running stack starts nothing and downloads nothing. Every failure names the
component and its log file.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack import (
    check,
    connect,
    external,
    jvm,
    kafka,
    late_tables,
    orderapi,
    postgres,
    publication,
    s3proxy,
    signal,
)
from pipelines.stack.connector_config import include_tables, render
from pipelines.stack.layout import S3PROXY_JARS, Layout
from pipelines.stack.procs import StackError, check_port_free, port_taken, wait_until
from pipelines.stack.purge import PurgeReport
from pipelines.stack.purge import purge as purge_home

Progress = Callable[[str], None] | None


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def left(self, floor: float = 5.0) -> float:
        return max(floor, self.end - time.monotonic())


def _say(progress: Progress, msg: str) -> None:
    if progress:
        progress(msg)


def _up_postgres(settings: Settings, layout: Layout, dl: _Deadline, progress: Progress) -> None:
    postgres.bindir()  # clear error before anything else if PostgreSQL is missing
    if postgres.init_cluster(settings, layout):
        _say(progress, "postgres: initialised a new cluster")
    if not postgres.pid(layout):
        check_port_free("postgres", settings.pg_host, settings.pg_port)
        _say(progress, f"postgres: starting on {settings.pg_host}:{settings.pg_port}")
        postgres.start(settings, layout, dl.left())
    postgres.bootstrap(settings, layout)
    with postgres.admin_connect(settings, layout, settings.pg_database) as conn:
        late_tables.install(conn, settings)
    postgres.wait_healthy(settings, layout, dl.left())


def _up_kafka(settings: Settings, layout: Layout, dl: _Deadline, progress: Progress) -> None:
    kafka.write_config(settings, layout)
    if kafka.format_storage(layout):
        _say(progress, "kafka: formatted KRaft storage")
    if not kafka.pid(layout):
        check_port_free("kafka", settings.bind_host, settings.kafka_port)
        check_port_free("kafka", settings.bind_host, settings.kafka_controller_port)
        _say(progress, f"kafka: starting on {settings.bootstrap_servers}")
        kafka.start(layout)
    kafka.wait_healthy(settings, layout, dl.left())


def _up_connect(settings: Settings, layout: Layout, dl: _Deadline, progress: Progress) -> None:
    connect.write_config(settings, layout)
    if not connect.pid(layout):
        check_port_free("connect", settings.bind_host, settings.connect_port)
        _say(progress, f"connect: starting on {settings.connect_url}")
        connect.start(layout)
    connect.wait_healthy(settings, layout, dl.left())


def _up_s3proxy(settings: Settings, layout: Layout, dl: _Deadline, progress: Progress) -> None:
    s3proxy.write_config(settings, layout)
    s3proxy.ensure_bucket(settings, layout)
    if not s3proxy.pid(layout):
        check_port_free("s3proxy", settings.bind_host, settings.s3_port)
        _say(progress, f"s3proxy: starting on {settings.s3_endpoint_url}")
        s3proxy.start(layout)
    s3proxy.wait_healthy(settings, layout, dl.left())
    _say(progress, f"s3proxy: healthy (bucket {settings.s3_bucket})")


@contextmanager
def _home_lock(layout: Layout) -> Iterator[None]:
    """One ``up``/``down`` at a time per home (two shells must not start two brokers)."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.run / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def up(settings: Settings, *, timeout: float = 180, progress: Progress = None) -> None:
    """Bring PostgreSQL, Kafka and Connect up and the connector RUNNING (idempotent); and the
    managed S3 endpoint (s3proxy) when the Iceberg warehouse is on it."""
    layout = Layout.of(settings)
    for d in (layout.home, layout.run, layout.logs, layout.conf):
        d.mkdir(parents=True, exist_ok=True)
    with _home_lock(layout):
        _up_locked(settings, layout, timeout, progress)


def _preflight(settings: Settings, parts: list[str], progress: Progress) -> None:
    """``changelake check`` for ``parts``; warnings are shown, a blocking finding stops ``up``."""
    if not parts:
        return
    for finding in check.require(settings, parts, tables_must_exist=False):
        if finding.severity == "warning":
            _say(progress, finding.line())
    _say(progress, f"preflight: {', '.join(parts)} ok")


def _up_locked(settings: Settings, layout: Layout, timeout: float, progress: Progress) -> None:
    managed = [p for p in check.PARTS if settings.managed(p)]
    _preflight(settings, [p for p in check.PARTS if p not in managed], progress)  # before starting
    if settings.managed("postgres"):
        layout.home.chmod(layout.home.stat().st_mode | 0o055)  # the postgres user traverses it
    if settings.managed("kafka") or settings.managed("connect"):
        jvm.require_tool("java", "openjdk-17-jre-headless")
        jvm.resolve_jars(layout, progress)  # a one-off download: not part of the health timeout
        jvm.write_log4j2(layout)
    if settings.s3_managed:
        jvm.require_tool("java", "openjdk-17-jre-headless")
        jvm.resolve_jars(layout, progress, names=(S3PROXY_JARS,))
    dl = _Deadline(timeout)
    for name, start in (("postgres", _up_postgres), ("kafka", _up_kafka), ("connect", _up_connect)):
        if settings.managed(name):
            start(settings, layout, dl, progress)
            _say(progress, f"{name}: healthy")
    if settings.s3_managed:
        _up_s3proxy(settings, layout, dl, progress)
    _preflight(settings, managed, progress)  # the managed ones, once they run
    if not settings.managed("postgres"):
        external.prepare(settings, layout)
    register_connector(settings)
    _say(progress, f"connector {settings.connector_name}: registered, waiting for RUNNING")
    wait_connector_running(settings, timeout=dl.left())
    _say(progress, f"connector {settings.connector_name}: RUNNING")
    if settings.order_api_port:
        _up_order_api(settings, layout, dl, progress)


def _up_order_api(settings: Settings, layout: Layout, dl: _Deadline, progress: Progress) -> None:
    """The demo shop's order API (pipelines/shop/api.py). An add-on, not part of the CDC path:
    a port held by another program is reported and the API left out, the stack still comes up."""
    where = f"{settings.bind_host}:{settings.order_api_port}"
    if not orderapi.pid(layout) and port_taken(settings.bind_host, settings.order_api_port):
        _say(progress, f"{orderapi.NAME}: NOT started, {where} is in use by another program")
        return
    orderapi.start(settings, layout, dl.left())
    _say(progress, f"{orderapi.NAME}: serving on {where}")


def down(
    settings: Settings, *, purge: bool = False, keep_lake: bool = False, progress: Progress = None
) -> PurgeReport:
    """Stop what ``up`` started (verified pids only), newest first; ``purge`` then deletes all the
    home holds except the jar cache (``keep_lake``: but the lake and warehouse; see ``purge``)
    and, on external components, the connector, slot and publication changelake created there.
    Returns what was removed (nothing without ``purge``)."""
    layout = Layout.of(settings)
    if not layout.home.exists():
        return PurgeReport()
    with _home_lock(layout):
        errors = []
        for stop in (orderapi.stop, s3proxy.stop, connect.stop, kafka.stop, postgres.stop):
            try:
                stop(layout)
            except StackError as exc:
                errors.append(str(exc))
        if errors:
            raise StackError("; ".join(errors))
        if purge:
            external.purge(settings, layout, lambda msg: _say(progress, msg))
    return purge_home(settings, keep_lake=keep_lake) if purge else PurgeReport()


def _wanted_publication(settings: Settings) -> set[tuple[str, str]]:
    tables = [(t.schema, t.table) for t in include_tables(settings)]
    return postgres.existing_tables(settings, tables)


def _keyless(settings: Settings) -> set[tuple[str, str]]:
    """Captured tables that may send key-less events: those that exist without a primary key,
    and those that do not exist yet. A table created later streams at once (the event trigger
    publishes it), before anyone could tell whether it has a key; a delete-policy topic loses
    nothing either way, while a compacted one would refuse key-less records and stop the task."""
    wanted = [(t.schema, t.table) for t in include_tables(settings)]
    absent = set(wanted) - postgres.existing_tables(settings, wanted)
    return postgres.existing_tables(settings, wanted, keyless=True) | absent


def register_connector(settings: Settings) -> None:
    """PUT the config derived from ``settings.captured`` (create or update; idempotent).

    The publication's table list is changelake's (:mod:`publication`): it is brought in line
    with the captured tables before the PUT, so Debezium never rewrites it.

    Tables the running connector did not capture before (its include list grew) get their
    existing rows by an incremental snapshot: once the task has restarted on the new config
    (so every change from then on streams), an ``execute-snapshot`` signal is sent; it also
    covers changes the old task dropped between ``ADD TABLE`` and its stop.
    """
    unstreamed = late_tables.unpublished(settings)  # existed, but nothing published them
    publication.ensure(settings)
    keyless = [t for t in include_tables(settings) if (t.schema, t.table) in _keyless(settings)]
    before = connect.connector_config(settings)
    reader = postgres.slot_reader(settings) if before is not None else None
    if connect.put_config(settings, render(settings, keyless=keyless)) and before is not None:
        _wait_task_restarted(settings, reader)
    added = _added_tables(settings, before, unstreamed)
    if added:
        wait_connector_running(settings, timeout=120)
        # published now: every change from here on streams, so a table still empty has no row
        # the stream will not carry (a snapshot would only add spurious `r` versions)
        holding = postgres.nonempty_tables(settings, added)
        if holding:
            signal.request_snapshot(settings, holding)


def _wait_task_restarted(settings: Settings, reader: int | None) -> None:
    """After a config change, until the slot is read by another walsender than ``reader``: the
    task restarted on the new config. The old task drops the events of tables its include list
    lacks (and its offsets move past them), so a change committed to a newly captured table
    before it stopped would be lost, and a snapshot signal for it would be answered
    UNKNOWN_SCHEMA (no rows ever arrive); from here on the new task reads every change."""
    layout = Layout.of(settings)

    def restarted() -> bool:
        if postgres.slot_reader(settings) not in (None, reader):
            return True
        tasks = (connect.connector_status(settings) or {}).get("tasks") or []
        return any(t.get("state") == "FAILED" for t in tasks)  # reported just below

    wait_until(
        restarted,
        timeout=120,
        what="connector task restarted on the new config",
        log=layout.log_file("connect"),
        interval=0.5,
    )
    wait_connector_running(settings, timeout=120)


def _added_tables(
    settings: Settings, before: dict[str, str] | None, unstreamed: list[QualifiedName]
) -> list[QualifiedName]:
    """Captured tables, existing now, whose rows the stream never carried: those the
    connector's previous include list did not name, and those that were named but outside the
    publication (created while the event trigger was missing or disabled). None on first
    registration: the initial snapshot reads every table. A table without a primary key cannot
    be snapshotted incrementally (Debezium pages by key) and is left out."""
    if before is None:
        return []
    old = set(before.get("table.include.list", "").split(","))
    new = [t for t in settings.captured if t.include_list_regex not in old or t in unstreamed]
    exist = postgres.existing_tables(settings, [(t.schema, t.table) for t in new])
    keyless = _keyless(settings)
    return [t for t in new if (t.schema, t.table) in exist - keyless]


def wait_connector_running(settings: Settings, timeout: float = 60) -> None:
    """Until the connector and its task are RUNNING and the publication holds every captured
    table that exists, i.e. a change committed from now on will be streamed."""
    layout = Layout.of(settings)
    deadline = time.monotonic() + timeout
    connect.wait_running(settings, layout, timeout)
    wait_until(
        lambda: _wanted_publication(settings) <= postgres.publication_tables(settings),
        timeout=max(1.0, deadline - time.monotonic()),
        what=f"publication {settings.publication_name}",
        log=layout.log_file("connect"),
    )
    connect.wait_running(settings, layout, max(1.0, deadline - time.monotonic()))


def _recover_connector(settings: Settings, timeout: float) -> None:
    """After a dependency restarted, restart a task Connect gave up on (FAILED), then wait
    until connector and task are RUNNING again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = connect.connector_status(settings)
        except StackError:
            time.sleep(1)
            continue
        tasks = (st or {}).get("tasks") or []
        if st and (
            st["connector"]["state"] == "FAILED" or any(t["state"] == "FAILED" for t in tasks)
        ):
            connect.restart(settings)
        elif connect.running(st):
            break
        time.sleep(1)
    wait_connector_running(settings, timeout=max(5.0, deadline - time.monotonic()))


def restart_component(settings: Settings, name: Literal["postgres", "kafka", "connect"]) -> None:
    """Stop one component and start it again, waiting for health and for the connector to be
    RUNNING again (for the fault suite)."""
    if name not in ("postgres", "kafka", "connect"):
        raise ValueError(f"unknown component {name!r}; expected postgres, kafka or connect")
    if not settings.managed(name):
        raise StackError(
            f"{name} is external (CHANGELAKE_*_MODE=external): changelake does not restart it"
        )
    layout = Layout.of(settings)
    dl = _Deadline(180)
    with _home_lock(layout):
        if name == "postgres":
            postgres.stop(layout)
            _up_postgres(settings, layout, dl, None)
        elif name == "kafka":
            kafka.stop(layout)
            _up_kafka(settings, layout, dl, None)
        else:
            connect.stop(layout)
            _up_connect(settings, layout, dl, None)
    _recover_connector(settings, timeout=dl.left())
