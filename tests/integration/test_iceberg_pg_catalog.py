"""The Iceberg commit protocol on a shared PostgreSQL catalog (a real private cluster).

Starts only PostgreSQL (no Kafka/Connect), on a free port in a temp home: a killed committer
and racing committer processes stay exactly-once when the catalog is PostgreSQL, and the
catalog's rows are in the layout Iceberg's JDBC catalog reads (``iceberg_tables``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from iceberg_lake import CRASH_EXIT, SCHEMA, TABLE, TOPIC, run_child, settings_for, start_child

from pipelines.config import Settings
from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.offsets import TopicPartition
from pipelines.stack import postgres
from pipelines.stack.layout import Layout
from tests.conftest import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_port() -> Iterator[int]:
    home = Path(tempfile.mkdtemp(prefix="changelake-iceberg-pg-"))
    home.chmod(0o755)  # the postgres server user must reach its data dir inside
    (port,) = free_ports(1)
    settings = Settings(_env_file=None, home=home, pg_port=port)
    layout = Layout.of(settings)
    postgres.init_cluster(settings, layout)
    postgres.start(settings, layout, timeout=60)
    try:
        postgres.bootstrap(settings, layout)
        yield port
    finally:
        postgres.stop(layout)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def home(pg_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"postgresql+psycopg://changelake:changelake@127.0.0.1:{pg_port}/changelake"
    monkeypatch.setenv("CHANGELAKE_ICEBERG_CATALOG_URI", url)  # children inherit it
    monkeypatch.setenv("CHANGELAKE_ICEBERG_CATALOG_NAME", tmp_path.name.replace("-", "_"))
    return tmp_path


def landed(home: Path) -> Counter[tuple[int, int]]:
    table = load_table(open_catalog(settings_for(home)), BRONZE, TABLE)
    rows = table.scan(selected_fields=("_kafka_partition", "_offset")).to_arrow()
    return Counter(
        zip(rows["_kafka_partition"].to_pylist(), rows["_offset"].to_pylist(), strict=True)
    )


def test_killed_and_racing_committers_on_a_postgres_catalog(home: Path) -> None:
    settings = settings_for(home)
    assert settings.iceberg_catalog_url.startswith("postgresql+psycopg://")
    ensure_table(open_catalog(settings), BRONZE, TABLE, SCHEMA)

    died = run_child(home, 0, [[0, 10], [10, 20]], crash_at="committed", crash_batch=1)
    assert died.returncode == CRASH_EXIT, died.stderr
    died = run_child(home, 0, [[20, 30]], crash_at="staged", crash_batch=0)
    assert died.returncode == CRASH_EXIT, died.stderr
    assert landed(home) == Counter((0, o) for o in range(20))

    batches = [[i * 5, i * 5 + 5] for i in range(4, 10)]  # [20, 25) ... [45, 50)
    procs = [start_child(home, p, batches if p == 0 else batches[:3]) for p in (0, 0, 1)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert all(
            json.loads(line)["state"] in ("committed", "skipped") for line in out.splitlines()
        )
    expected = Counter((0, o) for o in range(50)) + Counter((1, o) for o in range(20, 35))
    assert landed(home) == expected
    table = load_table(open_catalog(settings), BRONZE, TABLE)
    assert off.committed_offsets(table) == {
        TopicPartition(TOPIC, 0): 50,
        TopicPartition(TOPIC, 1): 35,
    }

    dsn = settings.iceberg_catalog_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"
            " WHERE catalog_name = %s",
            (settings.iceberg_catalog_name,),
        ).fetchall()
    assert row == [("bronze", "shop__orders", table.metadata_location)]
