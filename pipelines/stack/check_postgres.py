"""The PostgreSQL part of ``changelake check``, run as the CDC role (the role Debezium uses).

Each check takes a ``PgContext`` and yields ``Finding``s; ``CHECKS`` is the ordered list
``run`` applies, and another check (e.g. "captured table not in the publication") plugs in by
appending a function to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from pipelines.config import Settings
from pipelines.naming import QualifiedName, quote_ident, quote_literal
from pipelines.stack import late_tables
from pipelines.stack.connector_config import HEARTBEAT, publish_option
from pipelines.stack.findings import Finding

MIN_SERVER_VERSION = 120000


@dataclass(frozen=True)
class Table:
    """A captured table as the catalog sees it."""

    name: QualifiedName
    owned: bool  # the CDC role is (a member of) its owner: it may add it to a publication
    select: bool  # SELECT on the table and USAGE on its schema
    has_key: bool
    identity: str  # relreplident: d(efault) n(othing) f(ull) i(ndex)
    toastable: tuple[str, ...]  # columns whose values may be stored out of line


@dataclass(frozen=True)
class PgContext:
    conn: psycopg.Connection
    settings: Settings
    tables: dict[QualifiedName, Table]  # the captured tables that exist
    tables_must_exist: bool

    def one(self, query: str, params: tuple = ()) -> tuple:
        return self.conn.execute(query, params).fetchone()

    @property
    def role(self) -> str:
        return quote_ident(self.settings.cdc_user)


_TABLES = """
SELECT n.nspname, c.relname,
       pg_has_role(c.relowner, 'USAGE'),
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       c.relreplident::text,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attstorage <> 'p' ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""


def _catalog(conn: psycopg.Connection, names: Iterable[QualifiedName]) -> dict:
    names = list(names)
    rows = conn.execute(_TABLES, ([n.schema for n in names], [n.table for n in names]))
    found = {}
    for schema, table, owned, select, key, ident, toast in rows.fetchall():
        name = QualifiedName(schema, table)
        found[name] = Table(name, owned, select, key, ident, tuple(toast))
    return found


def server_version(ctx: PgContext) -> Iterable[Finding]:
    num, text = ctx.one("SELECT current_setting('server_version_num')::int, version()")
    ok = num >= MIN_SERVER_VERSION
    yield Finding(
        "postgres.version",
        "ok" if ok else "blocking",
        f"{text.split(',')[0]}" + ("" if ok else " (changelake needs PostgreSQL 12 or newer)"),
        "upgrade PostgreSQL to 12 or newer",
    )


def wal_level(ctx: PgContext) -> Iterable[Finding]:
    (level,) = ctx.one("SELECT current_setting('wal_level')")
    yield Finding(
        "postgres.wal_level",
        "ok" if level == "logical" else "blocking",
        f"wal_level = {level}"
        + ("" if level == "logical" else " (logical decoding needs logical)"),
        "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
    )


def replication_capacity(ctx: PgContext) -> Iterable[Finding]:
    slot = ctx.settings.slot_name
    max_slots, used, mine, other_db, max_senders, senders, active = ctx.one(
        "SELECT current_setting('max_replication_slots')::int,"
        " (SELECT count(*) FROM pg_replication_slots),"
        " EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %(s)s"
        "   AND database = current_database() AND plugin = 'pgoutput'),"
        " EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %(s)s"
        "   AND (database IS DISTINCT FROM current_database() OR plugin <> 'pgoutput')),"
        " current_setting('max_wal_senders')::int,"
        " (SELECT count(*) FROM pg_stat_replication),"
        " EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %(s)s AND active)",
        {"s": slot},
    )
    if other_db:
        yield Finding(
            "postgres.slot",
            "blocking",
            f"slot {slot} exists but for another database or output plugin",
            "set CHANGELAKE_SLOT_NAME to an unused name",
        )
    elif mine:
        yield Finding("postgres.slot", "ok", f"slot {slot} exists ({used}/{max_slots} used)")
    else:
        free = max_slots - used
        yield Finding(
            "postgres.slot",
            "ok" if free > 0 else "blocking",
            f"{free} of max_replication_slots = {max_slots} free (changelake needs 1)",
            f"ALTER SYSTEM SET max_replication_slots = {used + 1}; then restart PostgreSQL",
        )
    free = max_senders - senders
    yield Finding(
        "postgres.wal_senders",
        "ok" if active or free > 0 else "blocking",
        f"{free} of max_wal_senders = {max_senders} free (changelake needs 1)",
        f"ALTER SYSTEM SET max_wal_senders = {senders + 1}; then restart PostgreSQL",
    )


def role(ctx: PgContext) -> Iterable[Finding]:
    replication, superuser, connect = ctx.one(
        "SELECT rolreplication, rolsuper,"
        " has_database_privilege(current_database(), 'CONNECT')"
        " FROM pg_roles WHERE rolname = current_user"
    )
    yield Finding(
        "postgres.role_replication",
        "ok" if replication or superuser else "blocking",
        f"role {ctx.settings.cdc_user} "
        + ("has REPLICATION" if replication or superuser else "lacks the REPLICATION attribute"),
        f"ALTER ROLE {ctx.role} REPLICATION;",
    )
    db = quote_ident(ctx.settings.pg_database)
    yield Finding(
        "postgres.connect",
        "ok" if connect else "blocking",
        f"role {ctx.settings.cdc_user} " + ("may" if connect else "may not") + " CONNECT",
        f"GRANT CONNECT ON DATABASE {db} TO {ctx.role};",
    )


def tables(ctx: PgContext) -> Iterable[Finding]:
    for name in ctx.settings.captured:
        if name not in ctx.tables:
            yield Finding(
                f"postgres.table {name}",
                "blocking" if ctx.tables_must_exist else "warning",
                f"captured table {name} does not exist (captured once it is created)",
                f"create {name.sql}, or remove it from CHANGELAKE_TABLES",
            )
    no_select = [t for t in ctx.tables.values() if not t.select]
    for t in no_select:
        yield Finding(
            f"postgres.select {t.name}",
            "blocking",
            f"role {ctx.settings.cdc_user} may not read {t.name} (the snapshot selects it)",
            f"GRANT USAGE ON SCHEMA {quote_ident(t.name.schema)} TO {ctx.role}; "
            f"GRANT SELECT ON {t.name.sql} TO {ctx.role};",
        )
    if ctx.tables and not no_select:
        yield Finding("postgres.select", "ok", f"SELECT on all {len(ctx.tables)} captured tables")


def publication(ctx: PgContext) -> Iterable[Finding]:
    """The CDC role must own the publication, or be able to create it, and own (as a member
    of the owner) each table it adds to it: that is what ALTER PUBLICATION requires."""
    s = ctx.settings
    name, pub = s.publication_name, quote_ident(s.publication_name)
    row = ctx.one(
        "SELECT pg_has_role(pubowner, 'USAGE'), pubowner::regrole::text, puballtables,"
        " ARRAY(SELECT schemaname || '.' || tablename FROM pg_publication_tables t"
        "       WHERE t.pubname = p.pubname)"
        " FROM pg_publication p WHERE pubname = %s",
        (name,),
    )
    may_create = ctx.one("SELECT has_database_privilege(current_database(), 'CREATE')")[0]
    fix_owner = f"ALTER PUBLICATION {pub} OWNER TO {ctx.role};"
    if row is None:
        yield Finding(
            "postgres.publication",
            "ok" if may_create else "blocking",
            f"publication {name} does not exist; "
            + ("changelake will create it" if may_create else "the CDC role may not create it"),
            f"GRANT CREATE ON DATABASE {quote_ident(s.pg_database)} TO {ctx.role}; or as its "
            f"owner: CREATE PUBLICATION {pub} WITH (publish = {quote_literal(publish_option(s))}); "
            + fix_owner,
        )
        published: set[str] = set()
    else:
        usable, owner, all_tables, listed = row
        published = set(listed)
        if all_tables:
            yield Finding(
                "postgres.publication",
                "blocking",
                f"publication {name} is FOR ALL TABLES; changelake manages its table list",
                "set CHANGELAKE_PUBLICATION_NAME to another name (changelake creates it)",
            )
            return
        yield Finding(
            "postgres.publication",
            "ok" if usable else "blocking",
            f"publication {name} exists, owned by {owner}"
            + ("" if usable else f"; role {s.cdc_user} may not alter it"),
            fix_owner,
        )
    for t in ctx.tables.values():
        if not t.owned and f"{t.name.schema}.{t.name.table}" not in published:
            yield Finding(
                f"postgres.publication {t.name}",
                "blocking",
                f"adding {t.name} to publication {name} needs its owner's rights",
                f"GRANT <owner of {t.name.sql}> TO {ctx.role}; or as the owner: "
                f"ALTER PUBLICATION {pub} ADD TABLE {t.name.sql};",
            )


def heartbeat(ctx: PgContext) -> Iterable[Finding]:
    """changelake's own schema: the CDC role writes its heartbeat table every interval."""
    schema = HEARTBEAT.schema
    row = ctx.one(
        "SELECT has_schema_privilege(n.oid, 'USAGE'), has_schema_privilege(n.oid, 'CREATE'),"
        " (SELECT has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE')"
        "   AND pg_has_role(c.relowner, 'USAGE')"
        "  FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = %s)"
        " FROM pg_namespace n WHERE n.nspname = %s",
        (HEARTBEAT.table, schema),
    )
    may_create = ctx.one("SELECT has_database_privilege(current_database(), 'CREATE')")[0]
    if row is None:
        yield Finding(
            "postgres.heartbeat",
            "ok" if may_create else "blocking",
            f"schema {schema} does not exist; "
            + ("changelake will create it" if may_create else "the CDC role may not create it"),
            f"as a superuser: CREATE SCHEMA {quote_ident(schema)} AUTHORIZATION {ctx.role};",
        )
        return
    usage, create, table_ok = row
    ok = usage and (table_ok if table_ok is not None else create)
    yield Finding(
        "postgres.heartbeat",
        "ok" if ok else "blocking",
        f"heartbeat table {HEARTBEAT} "
        + ("is writable" if ok else f"is not usable by role {ctx.settings.cdc_user}"),
        f"ALTER SCHEMA {quote_ident(schema)} OWNER TO {ctx.role}; "
        f"ALTER TABLE {HEARTBEAT.sql} OWNER TO {ctx.role};",
    )


def keys_and_identity(ctx: PgContext) -> Iterable[Finding]:
    for t in ctx.tables.values():
        fix = f"ALTER TABLE {t.name.sql} REPLICA IDENTITY FULL;"
        if not t.has_key and t.identity in ("d", "n"):
            yield Finding(
                f"postgres.identity {t.name}",
                "warning",  # inserts are captured; it is the application's writes that fail
                f"{t.name} has no primary key and no replica identity: once published, "
                "PostgreSQL rejects its UPDATEs and DELETEs",
                fix,
            )
        elif not t.has_key:
            yield Finding(
                f"postgres.identity {t.name}",
                "warning",
                f"{t.name} has no primary key: its events carry no key, so its topic keeps "
                "every event (delete policy) and silver treats it as a multiset",
                "ALTER TABLE ... ADD PRIMARY KEY (...) if the table has one",
            )
        elif t.identity == "d" and t.toastable:
            yield Finding(
                f"postgres.toast {t.name}",
                "ok",
                f"{t.name}: an UPDATE leaving TOASTed {', '.join(t.toastable)} unchanged "
                "sends a placeholder (REPLICA IDENTITY DEFAULT); changelake resolves it from "
                "the previous version",
                fix,
            )


def late_capture(ctx: PgContext) -> Iterable[Finding]:
    """Captured changes that would go missing (``late_tables``): a captured table outside the
    publication, or no event trigger to publish tables created later. Only once ``up`` has
    registered the connector (before it, the publication and captured list are not set yet)."""
    if not ctx.tables_must_exist:
        return
    try:
        found = late_tables.findings(ctx.settings)
    except psycopg.Error as exc:
        yield Finding("postgres.capture", "warning", f"could not read the capture state: {exc}")
        return
    for f in found:
        yield Finding("postgres.capture", "warning", f.message, f.sql or f.fix)
    if not found:
        yield Finding(
            "postgres.capture",
            "ok",
            "every captured table that exists is published; tables created later join the "
            "publication in their creating transaction (event trigger)",
        )


CHECKS: list[Callable[[PgContext], Iterable[Finding]]] = [
    server_version,
    wal_level,
    replication_capacity,
    role,
    tables,
    publication,
    heartbeat,
    keys_and_identity,
    late_capture,
]


def run(settings: Settings, *, tables_must_exist: bool = True) -> list[Finding]:
    dsn = settings.pg_dsn(user=settings.cdc_user, password=settings.cdc_password)
    where = f"{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return [
            Finding(
                "postgres.login",
                "blocking",
                f"cannot connect to {where} as {settings.cdc_user}: {reason}",
                "check CHANGELAKE_PG_HOST/PORT/DATABASE, CHANGELAKE_CDC_USER/PASSWORD and "
                f"pg_hba.conf; GRANT CONNECT ON DATABASE {quote_ident(settings.pg_database)} "
                f"TO {quote_ident(settings.cdc_user)};",
            )
        ]
    with conn:
        ctx = PgContext(conn, settings, _catalog(conn, settings.captured), tables_must_exist)
        return [finding for check in CHECKS for finding in check(ctx)]
