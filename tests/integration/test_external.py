"""All three components external: an initdb cluster of the test's own plus the session stack's
Kafka and Connect, which are someone else's processes from this configuration's point of
view. ``up`` starts nothing and registers the connector there; a row reaches Kafka; ``down
--purge`` removes the connector and leaves no slot and no publication of changelake's."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack import end_offsets, topic_for
from tests.integration.test_check import CHANGELAKE, cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_up_on_external_components_and_purge_leaves_nothing(stack, cluster) -> None:  # noqa: ANN001, F811
    cluster.ctl("-m", "fast", "stop")
    cluster.start("logical")
    with cluster.su() as conn:
        conn.execute("ALTER ROLE cdc REPLICATION")
    outer = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")} | {
        "CHANGELAKE_HOME": str(cluster.root / "home"),
        "CHANGELAKE_PG_MODE": "external",
        "CHANGELAKE_PG_PORT": str(cluster.port),
        "CHANGELAKE_PG_DATABASE": "app",
        "CHANGELAKE_PG_USER": "app",
        "CHANGELAKE_PG_PASSWORD": "app",
        "CHANGELAKE_CDC_USER": "cdc",
        "CHANGELAKE_CDC_PASSWORD": "cdc",
        "CHANGELAKE_TABLES": "crm.people",
        "CHANGELAKE_KAFKA_MODE": "external",
        "CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS": outer.bootstrap_servers,
        "CHANGELAKE_CONNECT_MODE": "external",
        "CHANGELAKE_CONNECT_REST_URL": outer.connect_url,
        "CHANGELAKE_TOPIC_PREFIX": "ext",
        "CHANGELAKE_CONNECTOR_NAME": "ext-postgres",
        "COLUMNS": "400",
    }
    mine = Settings(
        _env_file=None, **{k[11:].lower(): v for k, v in env.items() if k.startswith("CHANGELAKE_")}
    )
    with cluster.su() as conn:
        conn.execute("INSERT INTO crm.people VALUES (1, 'existing')")
    up = subprocess.run([str(CHANGELAKE), "up"], env=env, capture_output=True, text=True)  # noqa: S603
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "starting" not in up.stdout  # nothing of ours was started
        topic = topic_for(mine, QualifiedName("crm", "people"))
        deadline = time.monotonic() + 120
        while end_offsets(outer).get((topic, 0), 0) < 1 and time.monotonic() < deadline:
            time.sleep(1)
        assert end_offsets(outer).get((topic, 0), 0) >= 1  # the existing row, snapshotted
        st = subprocess.run([str(CHANGELAKE), "status"], env=env, capture_output=True, text=True)  # noqa: S603
        assert st.returncode == 0 and "external" in st.stdout, st.stdout
    finally:
        down = subprocess.run(  # noqa: S603
            [str(CHANGELAKE), "down", "--purge"], env=env, capture_output=True, text=True
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert "dropping replication slot" in down.stdout and "dropping publication" in down.stdout
    with cluster.su() as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
    with psycopg.connect(outer.pg_dsn(), autocommit=True):
        pass  # the session stack's own database is untouched and still answers
