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


def _external(pg, outer: Settings, tables: str, prefix: str) -> tuple[dict, Settings]:  # noqa: ANN001
    """The environment (and its Settings) of a changelake configured only with addresses: the
    test's own cluster, the session stack's Kafka and Connect as someone else's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")} | {
        "CHANGELAKE_HOME": str(pg.root / f"home-{prefix}"),
        "CHANGELAKE_PG_MODE": "external",
        "CHANGELAKE_PG_PORT": str(pg.port),
        "CHANGELAKE_PG_DATABASE": "app",
        "CHANGELAKE_PG_USER": "app",
        "CHANGELAKE_PG_PASSWORD": "app",
        "CHANGELAKE_CDC_USER": "cdc",
        "CHANGELAKE_CDC_PASSWORD": "cdc",
        "CHANGELAKE_TABLES": tables,
        "CHANGELAKE_KAFKA_MODE": "external",
        "CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS": outer.bootstrap_servers,
        "CHANGELAKE_CONNECT_MODE": "external",
        "CHANGELAKE_CONNECT_REST_URL": outer.connect_url,
        "CHANGELAKE_TOPIC_PREFIX": prefix,
        "CHANGELAKE_CONNECTOR_NAME": f"{prefix}-postgres",
        "CHANGELAKE_SLOT_NAME": f"{prefix}_slot",
        "CHANGELAKE_PUBLICATION_NAME": f"{prefix}_pub",
        "COLUMNS": "400",
    }
    mine = Settings(
        _env_file=None, **{k[11:].lower(): v for k, v in env.items() if k.startswith("CHANGELAKE_")}
    )
    return env, mine


def test_up_on_external_components_and_purge_leaves_nothing(stack, cluster) -> None:  # noqa: ANN001, F811
    cluster.ctl("-m", "fast", "stop")
    cluster.start("logical")
    with cluster.su() as conn:
        conn.execute("ALTER ROLE cdc REPLICATION")
    outer = stack.settings
    env, mine = _external(cluster, outer, "crm.people", "ext")
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


UNSEEN = """
CREATE SCHEMA inv;
CREATE TABLE inv.items (sku text, warehouse int, qty int NOT NULL, price numeric(12, 3),
                        seen timestamptz, PRIMARY KEY (sku, warehouse));
CREATE TABLE inv.docs (id bigint PRIMARY KEY, rev int NOT NULL, body text);
CREATE TABLE inv.audit (msg text, at timestamptz DEFAULT now());
INSERT INTO inv.items SELECT 'sku-' || g, g % 7, g, g * 1.125, now() - g * interval '1 min'
  FROM generate_series(1, 6000) g;
INSERT INTO inv.docs SELECT g, 0, (SELECT string_agg(md5(g::text || i::text), '') FROM
  generate_series(1, 400) i) FROM generate_series(1, 60) g;
INSERT INTO inv.audit (msg) SELECT 'boot ' || g FROM generate_series(1, 300) g;
"""


def _writer(dsn: str, stop, counts: dict) -> None:  # noqa: ANN001
    """Updates, deletes and inserts on every table while the snapshot runs; docs updates leave
    the 25 kB body (TOASTed) untouched, so Debezium sends the unchanged-TOAST placeholder."""
    import random

    rng = random.Random(13)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            g = rng.randint(1, 6000)
            conn.execute(
                "UPDATE inv.items SET qty = qty + 1, seen = now() WHERE sku = %s AND warehouse = %s",
                (f"sku-{g}", g % 7),
            )
            if g % 5 == 0:
                conn.execute("DELETE FROM inv.items WHERE sku = %s", (f"sku-{g + 1}",))
            conn.execute("UPDATE inv.docs SET rev = rev + 1 WHERE id = %s", (g % 60 + 1,))
            conn.execute("INSERT INTO inv.audit (msg) VALUES (%s)", (f"w {g}",))
            counts["tx"] += 1
            time.sleep(0.01)


def test_an_unseen_schema_with_rows_arrives_whole_while_a_writer_keeps_changing_it(
    stack,  # noqa: ANN001
    cluster,  # noqa: ANN001, F811
    tmp_path,
) -> None:
    """The issue's first acceptance: changelake configured only with addresses captures a
    schema it has never seen (composite key, key-less table, TOAST-sized text, rows already
    there) while a concurrent writer updates and deletes during the initial snapshot; after
    landing and compaction silver equals PostgreSQL, table by table."""
    import threading

    from pipelines import silver
    from pipelines.bronze.lander import land
    from pipelines.defs.reconcile import reconcile
    from pipelines.defs.stagemeta import current_files
    from pipelines.shop.demo import wait_until_streamed

    cluster.ctl("-m", "fast", "stop")
    cluster.start("logical")
    with cluster.su() as conn:
        conn.execute("ALTER ROLE cdc REPLICATION")
        conn.execute("SET ROLE app")
        conn.execute(UNSEEN)
    tables = ("inv.items", "inv.docs", "inv.audit")
    env, mine = _external(cluster, stack.settings, ",".join(tables), "unseen")
    mine = Settings(**(mine.model_dump() | {"lake": tmp_path / "lake"}))
    stop, counts = threading.Event(), {"tx": 0}
    writer = threading.Thread(target=_writer, args=(mine.pg_dsn(), stop, counts), daemon=True)
    writer.start()
    try:
        up = subprocess.run([str(CHANGELAKE), "up"], env=env, capture_output=True, text=True)  # noqa: S603
        assert up.returncode == 0, up.stdout + up.stderr
        time.sleep(5)  # the writer goes on into streaming
    finally:
        stop.set()
        writer.join()
    try:
        assert counts["tx"] > 50, counts
        wait_until_streamed(mine)
        land(mine, until_caught_up=True)
        silver.compact_all(mine)
        with psycopg.connect(mine.pg_dsn()) as conn:
            for name in tables:
                t = QualifiedName.parse(name)
                files = current_files(mine, t)
                assert files, f"{t}: no silver snapshot"
                done = reconcile(mine, t, conn)
                assert done.plan.compared, f"{t}: nothing comparable ({done.plan.skipped})"
                assert done.equal, f"{t}: silver != PostgreSQL"
    finally:
        subprocess.run([str(CHANGELAKE), "down", "--purge"], env=env, capture_output=True)  # noqa: S603
