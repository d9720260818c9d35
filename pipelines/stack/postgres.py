"""A private PostgreSQL cluster for the stack: initdb, config, start/stop, roles.

Runs the machine's own PostgreSQL binaries on a data directory under ``CHANGELAKE_HOME``
(``wal_level=logical``, loopback only, its socket dir under the home too). PostgreSQL refuses
to run as root, so as root every server command runs as the ``postgres`` system user.

Roles: the app role owns the database and every table it creates; the CDC role has
REPLICATION and is a *member* of the app role. Membership gives it owner rights on the app
role's tables, including tables created later, which is what keeping the publication's table
list needs (``ALTER PUBLICATION ... ADD TABLE`` requires owning each table; see
:mod:`pipelines.stack.publication`) and what Debezium's snapshot ``SELECT`` needs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from pipelines.config import Settings
from pipelines.naming import QualifiedName, quote_ident
from pipelines.stack.layout import Layout
from pipelines.stack.procs import StackError, live_pid, run, wait_until

SUPERUSER = "postgres"
HEARTBEAT_SCHEMA = "_changelake"  # changelake's own schema (never an app role's "$user")
HEARTBEAT_TABLE = "heartbeat"
# Debezium's signalling table (``signal.data.collection``): changelake inserts ``execute-snapshot``
# signals, Debezium its incremental-snapshot window marks; both reach Debezium through the WAL.
SIGNAL_TABLE = "debezium_signal"
RUN_AS = "postgres"


def bindir() -> Path:
    """Directory of ``initdb``/``pg_ctl``: ``pg_config --bindir``, else the newest Debian one."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)  # noqa: S603
        cand = Path(out.stdout.strip())
        if out.returncode == 0 and (cand / "initdb").exists():
            return cand
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent  # type: ignore[arg-type]
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package `postgresql`"
    )


def _as_server_user(argv: list[str]) -> list[str]:
    """Prefix a command so it runs as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError as exc:
        raise StackError(
            f"running as root needs a `{RUN_AS}` system user: "
            f"useradd --system {RUN_AS} (or apt-get install postgresql)"
        ) from exc
    return ["runuser", "-u", RUN_AS, "--", *argv]


def _give_to_server_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    ent = pwd.getpwnam(RUN_AS)
    for p in paths:
        os.chown(p, ent.pw_uid, ent.pw_gid)


def marker(layout: Layout) -> str:
    """Text in the postmaster's command line that identifies this stack's server."""
    return str(layout.pg_data)


def pid(layout: Layout) -> int | None:
    return live_pid(layout.pg_data / "postmaster.pid", marker(layout))


def _config(settings: Settings, layout: Layout) -> str:
    return "\n".join(
        [
            "# written by `changelake up` on every start; edit Settings (CHANGELAKE_*) instead",
            f"listen_addresses = '{settings.pg_host}'",
            f"port = {int(settings.pg_port)}",
            f"unix_socket_directories = '{layout.pg_socket_dir}'",
            "wal_level = logical",
            "max_wal_senders = 16",
            "max_replication_slots = 16",
            "max_connections = 100",
            "shared_buffers = 64MB",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "log_line_prefix = '%m [%p] %u@%d '",
            "",
        ]
    )


def init_cluster(settings: Settings, layout: Layout) -> bool:
    """``initdb`` once; (re)write our config include every time. True if newly created."""
    created = False
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = layout.log_file("postgres")
    log.touch()
    _give_to_server_user(log)
    if not (layout.pg_data / "PG_VERSION").exists():
        layout.pg_data.mkdir(parents=True, exist_ok=True)
        layout.pg_data.chmod(0o700)
        _give_to_server_user(layout.pg_data)
        run(
            _as_server_user(
                [
                    str(bindir() / "initdb"),
                    "-D",
                    str(layout.pg_data),
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ]
            ),
            what="PostgreSQL initdb",
            log=log,
        )
        with open(layout.pg_data / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'changelake.conf'\n")
        created = True
    layout.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    layout.pg_socket_dir.chmod(0o700)  # local (trust) access only for the server user and root
    _give_to_server_user(layout.pg_socket_dir)
    conf = layout.pg_data / "changelake.conf"
    conf.write_text(_config(settings, layout))
    _give_to_server_user(conf)
    return created


def start(settings: Settings, layout: Layout, timeout: float) -> None:
    if pid(layout):
        return
    log = layout.log_file("postgres")
    run(
        _as_server_user(
            [
                str(bindir() / "pg_ctl"),
                "-D",
                str(layout.pg_data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        ),
        what=f"PostgreSQL start on port {settings.pg_port}",
        log=log,
    )
    p = pid(layout)
    if p:
        layout.run.mkdir(parents=True, exist_ok=True)
        layout.pid_file("postgres").write_text(f"{p}\n")


def stop(layout: Layout) -> None:
    if not pid(layout):
        return
    run(
        _as_server_user(
            [
                str(bindir() / "pg_ctl"),
                "-D",
                str(layout.pg_data),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ]
        ),
        what="PostgreSQL stop",
        log=layout.log_file("postgres"),
    )
    layout.pid_file("postgres").unlink(missing_ok=True)


def admin_connect(
    settings: Settings, layout: Layout, dbname: str = "postgres"
) -> psycopg.Connection:
    """Superuser connection over the private Unix socket (trust; the socket dir is 0700)."""
    return psycopg.connect(
        host=str(layout.pg_socket_dir),
        port=settings.pg_port,
        user=SUPERUSER,
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


def app_connect(settings: Settings) -> psycopg.Connection:
    """The app role over TCP, autocommit (what tests and the demo use)."""
    return psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=5)


def _ensure_role(cur: psycopg.Cursor, name: str, password: str, *, replication: bool) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(
        sql.SQL("{} ROLE {} LOGIN {} PASSWORD {}").format(
            sql.SQL(verb),
            sql.Identifier(name),
            sql.SQL("REPLICATION" if replication else "NOREPLICATION"),
            sql.Literal(password),
        )
    )


def bootstrap(settings: Settings, layout: Layout) -> None:
    """Idempotently create the roles, the database and the heartbeat table."""
    with admin_connect(settings, layout) as conn, conn.cursor() as cur:
        _ensure_role(cur, settings.pg_user, settings.pg_password, replication=False)
        _ensure_role(cur, settings.cdc_user, settings.cdc_password, replication=True)
        cur.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(settings.pg_user), sql.Identifier(settings.cdc_user)
            )
        )
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,))
        if not cur.fetchone():
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(
                    sql.Identifier(settings.pg_database), sql.Identifier(settings.pg_user)
                )
            )
    with admin_connect(settings, layout, settings.pg_database) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(settings.pg_user)))
        for stmt in heartbeat_ddl():
            cur.execute(stmt)


def heartbeat_ddl() -> list[sql.Composed]:
    """changelake's own schema, its heartbeat table and Debezium's signal table, created by
    whoever is to own them (the app role when managed: the CDC role is a member of it, so
    Debezium may write its window marks into the signal table and publish both)."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(HEARTBEAT_SCHEMA)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (id int PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(HEARTBEAT_SCHEMA), sql.Identifier(HEARTBEAT_TABLE)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (id varchar(64) PRIMARY KEY, "
            "type varchar(32) NOT NULL, data text)"
        ).format(sql.Identifier(HEARTBEAT_SCHEMA), sql.Identifier(SIGNAL_TABLE)),
    ]


def heartbeat_query() -> str:
    """The statement Debezium runs every heartbeat: a tiny write so an idle slot advances."""
    target = f"{quote_ident(HEARTBEAT_SCHEMA)}.{quote_ident(HEARTBEAT_TABLE)}"
    return f"INSERT INTO {target} (id, ts) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts"  # noqa: S608 - constant names, quoted


def healthy(settings: Settings) -> bool:
    with app_connect(settings) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def wait_healthy(settings: Settings, layout: Layout, timeout: float) -> None:
    wait_until(
        lambda: healthy(settings), timeout=timeout, what="postgres", log=layout.log_file("postgres")
    )


def slot_lag_bytes(settings: Settings) -> int | None:
    """WAL bytes the replication slot has not confirmed yet (None if the slot does not exist)."""
    with app_connect(settings) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (settings.slot_name,),
        ).fetchone()
    return None if row is None else int(row[0] or 0)


def slot_reader(settings: Settings) -> int | None:
    """The pid of the walsender reading the replication slot now (None: nobody reads it)."""
    with app_connect(settings) as conn:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
            (settings.slot_name,),
        ).fetchone()
    return None if row is None else row[0]


def retained_wal(settings: Settings) -> dict[str, int]:
    """WAL bytes each replication slot of the server holds back from removal (from its
    ``restart_lsn``): what an abandoned or lagging slot costs the database's disk."""
    with app_connect(settings) as conn:
        rows = conn.execute(
            "SELECT slot_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)"
            "::bigint FROM pg_replication_slots ORDER BY slot_name"
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def nonempty_tables(settings: Settings, tables: Sequence[QualifiedName]) -> list[QualifiedName]:
    """Which of ``tables`` hold at least one row now (one index-free probe each)."""
    out = []
    with app_connect(settings) as conn:
        for t in tables:
            probe = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(
                sql.Identifier(t.schema), sql.Identifier(t.table)
            )
            if conn.execute(probe).fetchone()[0]:
                out.append(t)
    return out


def publication_tables(settings: Settings) -> set[tuple[str, str]]:
    with app_connect(settings) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
            (settings.publication_name,),
        ).fetchall()
    return {(r[0], r[1]) for r in rows}


def existing_tables(
    settings: Settings, tables: list[tuple[str, str]], *, keyless: bool = False
) -> set[tuple[str, str]]:
    """Which of ``tables`` exist now as plain tables (Debezium only puts existing tables in the
    publication; a partitioned parent is listed there through its partitions, so not checked).
    ``keyless``: instead, which exist as plain or partitioned tables without a primary key
    (Debezium sends their events without a key)."""
    if not tables:
        return set()
    kinds = "('r', 'p')" if keyless else "('r')"
    no_key = (
        " AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
        if keyless
        else ""
    )
    query = sql.SQL(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN {kinds} AND (n.nspname, c.relname) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[])){no_key}"
    ).format(kinds=sql.SQL(kinds), no_key=sql.SQL(no_key))
    with app_connect(settings) as conn:
        rows = conn.execute(query, ([s for s, _ in tables], [t for _, t in tables])).fetchall()
    return {(r[0], r[1]) for r in rows}
