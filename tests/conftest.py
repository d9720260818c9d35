"""Shared pytest fixtures.

``stack`` (session scope) starts the REAL stack once per pytest session -- PostgreSQL, Kafka
(KRaft) and Kafka Connect with Debezium -- in a fresh temporary CHANGELAKE_HOME on free ports,
so parallel sessions never collide, and tears it down (down + purge) at the end. It sets the
CHANGELAKE_* environment variables for the session, so ``get_settings()`` anywhere sees it.

Integration tests are skipped only when CHANGELAKE_SKIP_INTEGRATION=1; otherwise a stack that
cannot start is an ERROR, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from pipelines.config import REPO_ROOT, Settings, get_settings
from pipelines.naming import QualifiedName

SKIP_INTEGRATION = os.environ.get("CHANGELAKE_SKIP_INTEGRATION") == "1"

# Example counts of properties that do not fix their own (the silver headline property):
# quick locally, thorough in CI (.ci/run sets CI=true). HYPOTHESIS_PROFILE=ci runs CI's locally.
hypothesis_settings.register_profile("dev", max_examples=12)
hypothesis_settings.register_profile(  # hypothesis' own CI profile (derandomized), more examples
    "ci", hypothesis_settings.get_profile("ci"), max_examples=200
)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)
SHARED_JAR_CACHE = REPO_ROOT / ".changelake" / "jars"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_INTEGRATION:
        return
    skip = pytest.mark.skip(reason="CHANGELAKE_SKIP_INTEGRATION=1")
    for item in items:
        if "integration" in item.keywords or "faults" in item.keywords:
            item.add_marker(skip)


def free_ports(n: int) -> list[int]:
    """``n`` distinct currently-free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StackHandle:
    """What the ``stack`` fixture yields: settings plus helpers to capture tables and query."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def settings(self) -> Settings:
        """Fresh settings from the session environment (reflects tables added by ``capture``)."""
        return get_settings()

    def pg(self) -> psycopg.Connection:
        """A new autocommit connection as the app role (use it in a ``with`` block)."""
        return psycopg.connect(self.settings.pg_dsn(), autocommit=True, connect_timeout=10)

    def capture(self, ddl: str, *tables: str, timeout: float = 120) -> tuple[QualifiedName, ...]:
        """Run ``ddl`` as the app role, add ``tables`` to CHANGELAKE_TABLES, re-register the
        connector, and return once Debezium streams them (publication holds them, connector and
        task RUNNING): every change committed after this returns reaches Kafka. Rows that
        existed before arrive through the incremental snapshot ``register_connector`` starts
        for tables new to the connector (as ``r`` rows, ``_snapshot = 'incremental'``). To
        capture a table from its first row instead, name it first (``capture("", table)``) and
        create it afterwards: the event trigger (pipelines/stack/late_tables.py) publishes it at
        CREATE."""
        from pipelines.stack import register_connector, wait_connector_running

        if ddl.strip():
            with self.pg() as conn:
                conn.execute(ddl)
        names = tuple(QualifiedName.parse(t) for t in tables)
        current = self.settings.captured
        merged = tuple(dict.fromkeys((*current, *names)))
        os.environ["CHANGELAKE_TABLES"] = ",".join(str(q) for q in merged)
        settings = self.settings
        register_connector(settings)
        wait_connector_running(settings, timeout=timeout)
        return names

    @contextmanager
    def outbox(self, outbox: str = "shop.outbox", aggregates: str = "order") -> Iterator[None]:
        """Domain events on for the block: ``outbox`` routed by the Outbox Event Router (the
        next ``capture`` registers it) and ``aggregates``' event topics landed by landers built
        from the session settings; off again afterwards (the connector keeps routing until
        the next registration, but no later lander lands the events)."""
        keys = ("CHANGELAKE_OUTBOX_TABLES", "CHANGELAKE_EVENT_AGGREGATES")
        with mock.patch.dict(os.environ, dict(zip(keys, (outbox, aggregates), strict=True))):
            yield

    def topic(self, table: str | QualifiedName) -> str:
        """Debezium's topic for ``table``."""
        from pipelines.stack import topic_for

        q = table if isinstance(table, QualifiedName) else QualifiedName.parse(table)
        return topic_for(self.settings, q)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackHandle]:
    if SKIP_INTEGRATION:
        pytest.skip("CHANGELAKE_SKIP_INTEGRATION=1")
    from pipelines import stack as stack_mod

    home = Path(tempfile.mkdtemp(prefix="changelake-test-"))
    home.chmod(0o755)  # the postgres server user must reach its data dir inside
    SHARED_JAR_CACHE.mkdir(parents=True, exist_ok=True)
    (home / "jars").symlink_to(SHARED_JAR_CACHE, target_is_directory=True)  # download once
    pg, kafka, controller, connect, order_api = free_ports(5)
    env = {
        "CHANGELAKE_HOME": str(home),
        "CHANGELAKE_PG_PORT": str(pg),
        "CHANGELAKE_KAFKA_PORT": str(kafka),
        "CHANGELAKE_KAFKA_CONTROLLER_PORT": str(controller),
        "CHANGELAKE_CONNECT_PORT": str(connect),
        "CHANGELAKE_ORDER_API_PORT": str(order_api),
        "CHANGELAKE_TABLES": "",
        # domain events are opt-in per test (tests/integration/test_outbox.py): a session
        # lander must not pick up the shop's events that another test's workload emits
        "CHANGELAKE_OUTBOX_TABLES": "",
        "CHANGELAKE_EVENT_AGGREGATES": "",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    handle = StackHandle(home)
    keep = os.environ.get("CHANGELAKE_KEEP_STACK") == "1"  # debugging: keep data and logs
    try:
        try:
            stack_mod.up(handle.settings, timeout=300)
        except Exception:
            keep = True  # a stack that cannot start is an ERROR; keep its logs to read
            raise
        yield handle
    finally:
        try:
            stack_mod.down(handle.settings, purge=not keep)
        finally:
            if keep:
                print(f"\nstack fixture: state kept in {home} (logs in {home / 'logs'})")
            else:
                (home / "jars").unlink(missing_ok=True)
                shutil.rmtree(home, ignore_errors=True)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
