"""DuckDB's Iceberg and httpfs extensions, loaded from the ``duckdb-extension-*`` PyPI packages.

DuckDB cannot download extensions at run time here. The packages ``duckdb-extension-iceberg``,
``-avro`` and ``-httpfs`` (pinned to DuckDB's exact version in pyproject.toml) have an empty
``__init__.py`` and carry the signed binary at
``<package>/extensions/v<duckdb version>/<name>.duckdb_extension``. ``LOAD '<that path>'``
loads it without installing anything; avro must be loaded first, or iceberg's initialisation
tries to auto-install it and fails. ``connect`` also points DuckDB's extension directory under
the home (nothing is written to ``~/.duckdb``), turns auto-install off, and for an s3://
warehouse creates the S3 secret httpfs reads the bucket with (``storage``). Then
``iceberg_scan(?)`` / ``iceberg_snapshots(?)`` take a table's metadata location as a parameter.

Loading the three extensions takes about 0.2 s, paid by every new DuckDB database. A process
that compacts ten tables per cycle (``changelake run``) would pay it ten times a cycle, so the
in-memory connections of one process are cursors of one shared database that loaded them once
(a cursor is a connection of its own: its temporary tables and registered arrow tables are
its own and go when it closes). The database is per process id: a forked child never uses
its parent's. (DuckDB with these extensions loaded in a forked child aborts at the child's
exit, shared or not, as measured here: changelake starts its lander processes with ``spawn``.)
"""

from __future__ import annotations

import importlib.util
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines.config import Settings
from pipelines.iceberg.storage import duckdb_secret_sql
from pipelines.naming import quote_literal

EXTENSIONS = ("avro", "httpfs", "iceberg")  # load order: iceberg needs avro (and S3: httpfs)


class MissingExtension(RuntimeError):
    """The duckdb-extension-<name> package for this DuckDB version is not installed."""


def extension_file(name: str) -> Path:
    """The ``.duckdb_extension`` file the ``duckdb-extension-<name>`` package ships."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise MissingExtension(f"package duckdb-extension-{name} is not installed")
    path = (
        Path(spec.origin).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{name}.duckdb_extension"
    )
    if not path.is_file():
        raise MissingExtension(
            f"duckdb-extension-{name} has no build for DuckDB {duckdb.__version__} ({path})"
        )
    return path


def load_iceberg(con: duckdb.DuckDBPyConnection) -> None:
    """Load avro, httpfs and iceberg into ``con`` (``iceberg_scan``, ``iceberg_snapshots``...)."""
    for name in EXTENSIONS:
        con.execute(f"LOAD {quote_literal(str(extension_file(name)))}")


def extension_directory(settings: Settings) -> Path:
    return settings.home.resolve() / "duckdb" / "extensions"


_SHARED: dict[tuple[int, str, str], duckdb.DuckDBPyConnection] = {}  # (pid, ext dir, secret)
_SHARED_LOCK = threading.Lock()


def connect(
    settings: Settings, database: str = ":memory:", *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the lake's Iceberg tables, on local disk or on S3: a
    cursor of the process's shared in-memory database, or a connection of ``database``."""
    if database == ":memory:" and not read_only:
        return _shared(settings).cursor()
    return _open(settings, database, read_only=read_only)


@contextmanager
def writing(settings: Settings, database: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose default database is the file ``database``, attached to the process's
    shared instance (its extensions already loaded: a fresh connection loads them again, a
    third of a catalog rewrite), checkpointed and detached at the end."""
    alias = f"writing_{uuid.uuid4().hex}"
    con = _shared(settings).cursor()
    con.execute(f"ATTACH {quote_literal(database)} AS {alias}")
    try:
        con.execute(f"USE {alias}")
        yield con
        con.execute(f"CHECKPOINT {alias}")
    finally:
        con.execute("USE memory")
        con.execute(f"DETACH {alias}")
        con.close()


def _shared(settings: Settings) -> duckdb.DuckDBPyConnection:
    secret = duckdb_secret_sql(settings) if settings.warehouse_on_s3 else ""
    key = (os.getpid(), str(extension_directory(settings)), secret)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = _open(settings, ":memory:")
        return _SHARED[key]


def _open(
    settings: Settings, database: str, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        database,
        read_only=read_only,
        config={
            "extension_directory": str(extension_directory(settings)),
            "autoinstall_known_extensions": False,
        },
    )
    configure(con, settings)
    return con


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Make ``con`` read the lake's Iceberg tables: the extensions, and on S3 the (temporary,
    never persisted) secret."""
    load_iceberg(con)
    if settings.warehouse_on_s3:
        con.execute(duckdb_secret_sql(settings))
