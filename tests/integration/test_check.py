"""``changelake check`` against a PostgreSQL cluster the test starts itself with initdb (not
through changelake), treated as an external database: wal_level=replica, a CDC role without
REPLICATION and a missing captured table give one blocking finding each and exit 1; once
fixed, the PostgreSQL part exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipelines.stack.postgres import _as_server_user, _give_to_server_user, bindir
from tests.conftest import free_ports

pytestmark = pytest.mark.integration
CHANGELAKE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "changelake"


class Cluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port, self.data = root, port, root / "data"

    def ctl(self, *args: str) -> None:
        argv = [str(bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log")]
        subprocess.run(_as_server_user([*argv, "-w", *args]), check=True, capture_output=True)  # noqa: S603

    def start(self, wal_level: str) -> None:
        (self.data / "postgresql.auto.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nwal_level = {wal_level}\n"
            f"unix_socket_directories = '{self.root}'\n"
        )
        self.ctl("start")

    def su(self) -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname="app", autocommit=True
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="h7-pg-"))
    root.chmod(0o755)
    (root / "log").touch()
    _give_to_server_user(root, root / "log")
    c = Cluster(root, free_ports(1)[0])
    init = [str(bindir() / "initdb"), "-D", str(c.data), "-U", "postgres", "--auth-local=trust"]
    subprocess.run(
        _as_server_user([*init, "--auth-host=scram-sha-256"]), check=True, capture_output=True
    )  # noqa: S603
    c.start("replica")
    try:
        with psycopg.connect(
            host=str(root), port=c.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'app'")
            conn.execute("CREATE ROLE cdc LOGIN PASSWORD 'cdc'")  # no REPLICATION
            conn.execute("CREATE DATABASE app OWNER app")
        with c.su() as conn:
            conn.execute("SET ROLE app")
            conn.execute("CREATE SCHEMA crm")
            conn.execute("CREATE TABLE crm.people (id int PRIMARY KEY, bio text)")
            conn.execute("RESET ROLE")
            conn.execute(
                "GRANT app TO cdc"
            )  # owner rights: it may add app's tables to a publication
        yield c
    finally:
        c.ctl("-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _check(c: Cluster, tables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    env |= {
        "CHANGELAKE_HOME": str(c.root / "home"),
        "CHANGELAKE_PG_MODE": "external",
        "CHANGELAKE_PG_PORT": str(c.port),
        "CHANGELAKE_PG_DATABASE": "app",
        "CHANGELAKE_PG_USER": "app",
        "CHANGELAKE_PG_PASSWORD": "app",
        "CHANGELAKE_CDC_USER": "cdc",
        "CHANGELAKE_CDC_PASSWORD": "cdc",
        "CHANGELAKE_TABLES": tables,
        "COLUMNS": "400",
    }
    return subprocess.run(  # noqa: S603
        [str(CHANGELAKE), "check", "--only", "postgres"], env=env, capture_output=True, text=True
    )


def test_check_names_each_problem_once_and_passes_when_fixed(cluster: Cluster) -> None:
    res = _check(cluster, "crm.people,crm.missing")
    blocking = [line for line in res.stdout.splitlines() if line.startswith("blocking")]
    assert res.returncode == 1, res.stdout + res.stderr
    assert len([b for b in blocking if "postgres.wal_level" in b]) == 1
    assert len([b for b in blocking if "postgres.role_replication" in b]) == 1
    assert len([b for b in blocking if "crm.missing" in b]) == 1
    assert len(blocking) == 3, res.stdout
    assert "ALTER SYSTEM SET wal_level = logical" in res.stdout
    assert 'ALTER ROLE "cdc" REPLICATION' in res.stdout
    # the TOAST-able column under REPLICA IDENTITY DEFAULT is explained, not blocking
    assert "placeholder" in res.stdout and "bio" in res.stdout

    cluster.ctl("-m", "fast", "stop")
    cluster.start("logical")
    with cluster.su() as conn:
        conn.execute("ALTER ROLE cdc REPLICATION")
    res = _check(cluster, "crm.people")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [line for line in res.stdout.splitlines() if line.startswith("blocking")]


def test_check_passes_on_the_running_managed_stack(stack) -> None:  # noqa: ANN001
    """Every part (PostgreSQL, Kafka, Connect with Debezium, the connector config validated on
    the worker) of a correct setup: exit 0, and the plugin's version is named."""
    env = os.environ | {"COLUMNS": "400"}
    res = subprocess.run([str(CHANGELAKE), "check"], env=env, capture_output=True, text=True)  # noqa: S603
    assert res.returncode == 0, res.stdout + res.stderr
    assert "connect.debezium: Debezium PostgreSQL connector 3." in res.stdout
    assert "connect.validate: the connector config validates" in res.stdout
    assert "kafka.message_max_bytes" in res.stdout


def test_status_shows_retained_wal_and_warns_past_the_limit(stack) -> None:  # noqa: ANN001
    from pipelines.stack import status

    settings = stack.settings
    st = status(settings)
    assert settings.slot_name in st.retained_wal and st.retained_wal[settings.slot_name] >= 0
    assert st.warnings == ()
    tight = status(settings.model_copy(update={"max_slot_lag_bytes": -1}))
    assert len(tight.warnings) == 1 and settings.slot_name in tight.warnings[0]
