"""Captured tables created while the pipeline runs: published in the creating transaction.

The publication holds the captured tables that existed at the last ``up``
(:mod:`pipelines.stack.publication`), so a table in ``CHANGELAKE_TABLES`` created later would
stream nothing. changelake installs, in its internal schema:

- ``captured_tables``: (publication, schema, table) rows, kept equal to what the connector
  captures by :func:`sync_captured` on every ``up`` (names compared exactly);
- an event trigger on ``ddl_command_end`` (``CREATE TABLE``, ``CREATE TABLE AS``,
  ``SELECT INTO``, ``ALTER TABLE`` for a rename or ``SET SCHEMA``) whose function adds a
  listed table that is not yet in the publication with ``ALTER PUBLICATION ... ADD TABLE``,
  in the DDL's own transaction, so its first row, even one written in that same transaction,
  is decoded (pgoutput reads membership with the transaction's historic catalog).

The function is ``SECURITY DEFINER`` owned by the CDC role: it can do exactly what Debezium's
``up`` does (the CDC role owns the publication and has owner rights on the captured
tables). Creating an event trigger needs a superuser (PostgreSQL 12-17), so on a database
changelake does not own, :func:`install_sql` is what its superuser runs once. If the function
cannot add a table it raises a WARNING and the DDL goes on (a CDC tool must not break the
application's migration); :func:`findings` then reports the table as not captured.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack import postgres
from pipelines.stack.connector_config import include_tables

SCHEMA = postgres.HEARTBEAT_SCHEMA  # changelake's internal schema (one constant, never restated)
LIST_TABLE = "captured_tables"
FUNCTION = "publish_captured_table"
EVENT_TRIGGER = f"{SCHEMA}_publish_captured_table"  # event trigger names are per database
TAGS = ("CREATE TABLE", "CREATE TABLE AS", "SELECT INTO", "ALTER TABLE")

_FUNCTION_BODY = """
DECLARE r record;
BEGIN
  FOR r IN
    SELECT DISTINCT t.publication, n.nspname, c.relname
    FROM pg_event_trigger_ddl_commands() d
    JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'r'
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN {list} t ON t.schema_name = n.nspname AND t.table_name = c.relname
    JOIN pg_publication p ON p.pubname = t.publication
    WHERE d.classid = 'pg_class'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr
                      WHERE pr.prpubid = p.oid AND pr.prrelid = c.oid)
  LOOP
    BEGIN
      EXECUTE format('ALTER PUBLICATION %I ADD TABLE %I.%I', r.publication, r.nspname, r.relname);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'changelake: captured table %.% NOT added to publication %: %',
        quote_ident(r.nspname), quote_ident(r.relname), quote_ident(r.publication), SQLERRM;
    END;
  END LOOP;
END
"""


@dataclass(frozen=True)
class Finding:
    """One problem that makes captured changes go missing, and the fix."""

    message: str
    fix: str
    sql: str = ""  # the SQL that fixes it, when an administrator must run it

    def __str__(self) -> str:
        return f"{self.message}; fix: {self.fix}"


def _list_ident() -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(LIST_TABLE))


def install_statements(settings: Settings) -> list[sql.Composed]:
    """The idempotent statements a superuser runs (in ``settings.pg_database``) to install it.
    The internal schema must exist (the heartbeat table's schema)."""
    fn = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(FUNCTION))
    trigger = sql.Identifier(EVENT_TRIGGER)
    body = _FUNCTION_BODY.format(list=_list_ident().as_string(None))
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (publication text NOT NULL, schema_name text NOT NULL,"
            " table_name text NOT NULL, PRIMARY KEY (publication, schema_name, table_name))"
        ).format(_list_ident()),
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(
            _list_ident(), sql.Identifier(settings.cdc_user)
        ),
        sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(_list_ident()),  # names only; for status
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS event_trigger LANGUAGE plpgsql"
            " SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}"
        ).format(fn, sql.Literal(body)),
        sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(fn, sql.Identifier(settings.cdc_user)),
        sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(trigger),
        sql.SQL(
            "CREATE EVENT TRIGGER {} ON ddl_command_end WHEN TAG IN ({}) EXECUTE FUNCTION {}()"
        ).format(trigger, sql.SQL(", ").join(sql.Literal(t) for t in TAGS), fn),
    ]


def install_sql(settings: Settings) -> str:
    """:func:`install_statements` as one script (what ``check`` shows an external DB's admin)."""
    return ";\n".join(s.as_string(None) for s in install_statements(settings)) + ";"


def install(conn: psycopg.Connection, settings: Settings) -> None:
    """Install (or refresh) the list table, function and event trigger; ``conn`` is a superuser
    connection to ``settings.pg_database``, in one transaction."""
    with conn.transaction():
        for stmt in install_statements(settings):
            conn.execute(stmt)


def sync_captured(conn: psycopg.Connection, settings: Settings) -> bool:
    """Make ``captured_tables`` hold exactly what the connector captures for this publication
    (one transaction). False if the list table is not installed (see :func:`findings`)."""
    if (
        conn.execute("SELECT to_regclass(%s)", (_list_ident().as_string(conn),)).fetchone()[0]
        is None
    ):
        return False
    tables = include_tables(settings)
    with conn.transaction():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE publication = %s").format(_list_ident()),
            (settings.publication_name,),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} SELECT %s, s, t FROM unnest(%s::text[], %s::text[]) AS u(s, t)"
            ).format(_list_ident()),
            (settings.publication_name, [t.schema for t in tables], [t.table for t in tables]),
        )
    return True


def unpublished(settings: Settings) -> list[QualifiedName]:
    """Captured tables (and the heartbeat table) that exist but are not in the publication."""
    wanted = include_tables(settings)
    present = postgres.existing_tables(settings, [(t.schema, t.table) for t in wanted])
    published = postgres.publication_tables(settings)
    return [t for t in wanted if (t.schema, t.table) in present - published]


def findings(settings: Settings) -> list[Finding]:
    """What makes captured changes go missing right now (empty: nothing): a captured table that
    exists but is not in the publication, and a missing, disabled or stale trigger (a captured
    table created later would not be published). Reads catalogs as the app role."""
    wanted = include_tables(settings)
    out = [
        Finding(
            f"captured table {t} is NOT in publication {settings.publication_name}: "
            "its changes are not captured",
            "`changelake up` adds it (rows written before then need a snapshot)",
        )
        for t in unpublished(settings)
    ]
    with postgres.app_connect(settings) as conn:
        enabled = conn.execute(
            "SELECT evtenabled <> 'D' FROM pg_event_trigger WHERE evtname = %s", (EVENT_TRIGGER,)
        ).fetchone()
        listed = None
        if conn.execute("SELECT to_regclass(%s)", (_list_ident().as_string(conn),)).fetchone()[0]:
            rows = conn.execute(
                sql.SQL("SELECT schema_name, table_name FROM {} WHERE publication = %s").format(
                    _list_ident()
                ),
                (settings.publication_name,),
            ).fetchall()
            listed = {QualifiedName(s, t) for s, t in rows}
    later = "a captured table created from now on would stream nothing until `changelake up`"
    if not enabled or not enabled[0]:
        state = "disabled" if enabled else "not installed"
        out.append(
            Finding(
                f"event trigger {EVENT_TRIGGER} is {state}: {later}",
                f"a superuser runs, in database {settings.pg_database}, the SQL of "
                "pipelines.stack.late_tables.install_sql (on the managed cluster: `changelake up`)",
                install_sql(settings),
            )
        )
    elif listed is None or not set(wanted) <= listed:  # extra names there are harmless
        missing = sorted(str(t) for t in set(wanted) - (listed or set()))
        out.append(
            Finding(
                f"{SCHEMA}.{LIST_TABLE} lacks captured {', '.join(missing)}: "
                "created from now on, it would stream nothing until `changelake up`",
                "`changelake up`",
            )
        )
    return out
