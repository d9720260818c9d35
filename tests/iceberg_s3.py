"""An Iceberg lake on the managed S3 endpoint with a PostgreSQL catalog, inside the test stack.

``s3_lake(stack, name)`` points the session at an s3:// warehouse (its own prefix) on s3proxy
and at a catalog database of the stack's PostgreSQL (its own catalog name, so test modules
never see each other's tables), runs ``up`` -- which must start s3proxy -- and yields the
settings; afterwards s3proxy is stopped and the environment restored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from pipelines import stack as stack_mod
from pipelines.config import Settings, get_settings
from pipelines.stack import postgres, s3proxy
from pipelines.stack.layout import Layout
from tests.conftest import StackHandle, free_ports

BUCKET = "changelake-test"
CATALOG_DB = "changelake_iceberg"


def _catalog_database(settings: Settings) -> str:
    """A database of its own for the Iceberg catalog, owned by the app role."""
    with postgres.admin_connect(settings, Layout.of(settings)) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (CATALOG_DB,))
        if found.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(CATALOG_DB), sql.Identifier(settings.pg_user)
                )
            )
    return (
        f"postgresql+psycopg://{settings.pg_user}:{settings.pg_password}"
        f"@{settings.pg_host}:{settings.pg_port}/{CATALOG_DB}"
    )


@contextmanager
def s3_lake(stack: StackHandle, name: str) -> Iterator[Settings]:
    (port,) = free_ports(1)
    env = {
        "CHANGELAKE_ICEBERG_WAREHOUSE": f"s3://{BUCKET}/{name}",
        "CHANGELAKE_ICEBERG_CATALOG_URI": _catalog_database(stack.settings),
        "CHANGELAKE_ICEBERG_CATALOG_NAME": name,
        "CHANGELAKE_S3_MODE": "managed",
        "CHANGELAKE_S3_PORT": str(port),
        "CHANGELAKE_S3_SECRET_ACCESS_KEY": f"secret-{name}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    layout = Layout.of(get_settings())
    try:
        stack_mod.up(get_settings(), timeout=120)  # starts s3proxy: the warehouse is on it
        yield get_settings()
    finally:
        s3proxy.stop(layout)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
