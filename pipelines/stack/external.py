"""What changelake does on a PostgreSQL (and a Kafka Connect) it does not own.

On an external database ``up`` creates, as the CDC role, only changelake's own schema with
its heartbeat table, the publication (unless one exists) and, through Debezium, the
replication slot. Before the connector first runs, it records which of the slot and the
publication did not exist yet (``run/created-objects.json``), so ``down --purge`` drops exactly
those two and nothing else: a publication or slot the user made stays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from pipelines.config import Settings
from pipelines.stack import connect, postgres
from pipelines.stack.layout import Layout
from pipelines.stack.procs import StackError

Say = Callable[[str], None]


def _record(layout: Layout) -> Path:
    return layout.run / "created-objects.json"


def _cdc(settings: Settings) -> psycopg.Connection:
    dsn = settings.pg_dsn(user=settings.cdc_user, password=settings.cdc_password)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def _exists(conn: psycopg.Connection, settings: Settings) -> dict[str, bool]:
    slot = conn.execute(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (settings.slot_name,)
    ).fetchone()
    pub = conn.execute(
        "SELECT 1 FROM pg_publication WHERE pubname = %s", (settings.publication_name,)
    ).fetchone()
    return {"slot": slot is not None, "publication": pub is not None}


def prepare(settings: Settings, layout: Layout) -> None:
    """Before registering on an external database: note which of slot and publication
    changelake is about to create, and create its own schema and heartbeat table."""
    path = _record(layout)
    created = json.loads(path.read_text()) if path.exists() else {}
    with _cdc(settings) as conn:
        exists = _exists(conn, settings)
        for stmt in postgres.heartbeat_ddl():
            conn.execute(stmt)
    for kind, there in exists.items():
        # created by us earlier stays ours; a fresh object is ours from now on
        created[kind] = bool(created.get(kind)) or not there
    layout.run.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(created | {"database": _where(settings)}))


def _where(settings: Settings) -> str:
    return f"{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"


def remove_connector(settings: Settings, say: Say) -> None:
    """On an external Connect: stop the connector, drop its stored offsets, delete it."""
    if connect.connector_status(settings) is None:
        return
    say(f"deleting connector {settings.connector_name} and its offsets on {settings.connect_url}")
    path = connect.connector_path(settings)
    connect.rest(settings, "PUT", path + "/stop")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = connect.connector_status(settings) or {}
        if st.get("connector", {}).get("state") == "STOPPED":
            break
        time.sleep(0.5)
    try:
        connect.rest(settings, "DELETE", path + "/offsets")
    except StackError as exc:  # older workers (< 3.6) cannot; a re-created one resumes there
        say(f"could not delete the connector's offsets: {exc}")
    connect.rest(settings, "DELETE", path)


def purge(settings: Settings, layout: Layout, say: Say) -> None:
    """``down --purge`` on an external database: drop the replication slot and the publication
    changelake created there (as recorded by ``prepare``), after saying so; nothing else."""
    if not settings.managed("connect"):  # a managed worker is stopped already: slot released
        remove_connector(settings, say)
    if settings.managed("postgres"):
        return
    path = _record(layout)
    created = json.loads(path.read_text()) if path.exists() else {}
    slot, pub = settings.slot_name, settings.publication_name
    where = _where(settings)
    kept = [
        name
        for kind, name in (("slot", f"slot {slot}"), ("publication", f"publication {pub}"))
        if not created.get(kind)
    ]
    if kept:
        say(f"{where}: leaving {' and '.join(kept)} in place (not created by changelake)")
    if len(kept) == 2:
        return
    with _cdc(settings) as conn:
        if created.get("slot"):
            say(f"{where}: dropping replication slot {slot} (created by changelake)")
            _drop_slot(conn, slot)
        if created.get("publication"):
            say(f"{where}: dropping publication {pub} (created by changelake)")
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))
    path.unlink(missing_ok=True)


def _drop_slot(conn: psycopg.Connection, slot: str, timeout: float = 60) -> None:
    """The walsender of a just-stopped connector may hold the slot a moment longer."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return
        if not row[0]:
            try:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                return
            except psycopg.errors.ObjectInUse:
                pass
        if time.monotonic() > deadline:
            raise StackError(f"replication slot {slot} is still in use; stop its consumer first")
        time.sleep(0.5)
