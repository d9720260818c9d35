"""The publication's table list, kept by changelake (Debezium runs with
``publication.autocreate.mode=disabled`` and never rewrites it).

Debezium's ``filtered`` mode computes the captured tables that exist when its task starts and
then runs ``ALTER PUBLICATION ... SET TABLE`` with them. A captured table created in between
(the event trigger in :mod:`late_tables` has just published it) is dropped again and streams
nothing: a restart of the task (a config change, Connect restarting it) raced every migration
that ran at that moment. changelake instead only ever adds and drops single tables:

- ``ADD TABLE`` for each captured table that exists and is not published;
- ``DROP TABLE`` for each published table that is no longer captured.

Neither can undo a concurrent ``CREATE`` of a captured table (it is captured, so never dropped;
adding it twice is a no-op), so no window remains. Runs as the CDC role, which owns the
publication and has owner rights on the captured tables (see :mod:`postgres`).
"""

from __future__ import annotations

import contextlib

import psycopg
from psycopg import errors, sql

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack import late_tables
from pipelines.stack.connector_config import include_tables, publish_option

_PUBLISHED = """
SELECT n.nspname, c.relname
FROM pg_publication p
JOIN pg_publication_rel pr ON pr.prpubid = p.oid
JOIN pg_class c ON c.oid = pr.prrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = %s
"""

_EXISTING = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND (n.nspname, c.relname) IN
      (SELECT * FROM unnest(%s::text[], %s::text[]))
"""


def ensure(settings: Settings) -> tuple[list[QualifiedName], list[QualifiedName]]:
    """Create the publication (or set its ``publish`` option), rewrite the event trigger's
    captured list, then bring the table list in line with what is captured. Returns the
    tables added and dropped."""
    name = sql.Identifier(settings.publication_name)
    publish = sql.Literal(publish_option(settings))
    dsn = settings.pg_dsn(user=settings.cdc_user, password=settings.cdc_password)
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (settings.publication_name,)
        ).fetchone()
        stmt = (
            "ALTER PUBLICATION {} SET (publish = {})"
            if exists
            else "CREATE PUBLICATION {} WITH (publish = {})"
        )
        conn.execute(sql.SQL(stmt).format(name, publish))
        # first the list the trigger publishes on CREATE, so a table created from now on is
        # published by the trigger or found below: never by neither
        late_tables.sync_captured(conn, settings)
        return _sync_tables(conn, settings)


def _sync_tables(
    conn: psycopg.Connection, settings: Settings
) -> tuple[list[QualifiedName], list[QualifiedName]]:
    wanted = include_tables(settings)
    wanted_keys = {(t.schema, t.table) for t in wanted}
    published = {(s, t) for s, t in conn.execute(_PUBLISHED, (settings.publication_name,))}
    existing = {
        (s, t)
        for s, t in conn.execute(_EXISTING, ([t.schema for t in wanted], [t.table for t in wanted]))
    }
    added = [t for t in wanted if (t.schema, t.table) in existing - published]
    for t in added:  # DuplicateObject: the event trigger published it meanwhile
        _alter(conn, settings, "ADD", t, errors.DuplicateObject)
    dropped = [QualifiedName(s, t) for s, t in sorted(published - wanted_keys)]
    for t in dropped:  # UndefinedObject: dropped or unpublished meanwhile
        _alter(conn, settings, "DROP", t, errors.UndefinedObject)
    return added, dropped


def _alter(
    conn: psycopg.Connection,
    settings: Settings,
    verb: str,
    table: QualifiedName,
    benign: type[Exception],
) -> None:
    stmt = sql.SQL("ALTER PUBLICATION {} " + verb + " TABLE {}.{}").format(
        sql.Identifier(settings.publication_name),
        sql.Identifier(table.schema),
        sql.Identifier(table.table),
    )
    with contextlib.suppress(benign):
        conn.execute(stmt)
