"""Debezium incremental snapshots, requested through the signalling table.

An ``execute-snapshot`` row inserted into the signal table (``signal.data.collection``) reaches
Debezium through the WAL like any change; Debezium then reads the tables chunk by chunk between
window marks it writes into the same table, interleaved with the live stream, and emits the rows
as ``r`` events with ``source.snapshot = 'incremental'``. Data collections and the
``additional-conditions`` collection are regular expressions to Debezium: each table is sent as
its anchored include-list regex, so a name with dots or other regex characters means itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack.connector_config import SIGNAL
from pipelines.stack.procs import StackError

#: Signal ids: ``changelake-<uuid>``, or this prefix for a ``--where`` snapshot, so the
#: notifications (which carry the signal id, not its data) tell a filtered snapshot apart.
SIGNAL_ID_PREFIX = "changelake-"
FILTERED_ID_PREFIX = "changelake-where-"


def snapshot_signal(tables: Sequence[QualifiedName], where: str | None = None) -> dict:
    """The ``data`` of an incremental ``execute-snapshot`` signal for ``tables``; ``where`` (SQL
    on the tables' columns) limits every table's snapshot to the rows it selects."""
    data: dict = {
        "data-collections": [t.include_list_regex for t in tables],
        "type": "incremental",
    }
    if where is not None:
        data["additional-conditions"] = [
            {"data-collection": t.include_list_regex, "filter": where} for t in tables
        ]
    return data


def check_filter(settings: Settings, tables: Sequence[QualifiedName], where: str) -> None:
    """Fail with PostgreSQL's own message if ``where`` is not a valid condition on each table
    (planned, never run), so a typo does not become a snapshot Debezium abandons in its log."""
    if not where.strip():
        raise StackError("--where: the condition is empty")
    with psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=10) as conn:
        for t in tables:
            try:
                conn.execute(
                    sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE ({})").format(
                        sql.Identifier(t.schema, t.table), sql.SQL(where)
                    )
                )
            except psycopg.Error as exc:
                msg = (exc.diag.message_primary or str(exc)).strip()
                raise StackError(f"--where is not a valid condition on {t}: {msg}") from exc


def request_snapshot(
    settings: Settings, tables: Sequence[QualifiedName], where: str | None = None
) -> str:
    """Insert an incremental ``execute-snapshot`` signal for ``tables``; returns its id."""
    if not tables:
        raise ValueError("request_snapshot needs at least one table")
    prefix = SIGNAL_ID_PREFIX if where is None else FILTERED_ID_PREFIX
    signal_id = f"{prefix}{uuid.uuid4()}"  # <= 53 characters: the id column is varchar(64)
    data = json.dumps(snapshot_signal(tables, where))
    with psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                sql.Identifier(SIGNAL.schema, SIGNAL.table)
            ),
            (signal_id, data),
        )
    return signal_id
