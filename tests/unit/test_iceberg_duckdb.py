"""DuckDB 1.5.5 reads changelake's Iceberg tables with iceberg_scan, from the PyPI extensions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from iceberg_lake import CRASH_EXIT, SCHEMA, TABLE, make_batch, run_child, settings_for
from pyiceberg.table import Table

from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog
from pipelines.iceberg.commit import commit_batch
from pipelines.iceberg.engine import extension_file, load_iceberg
from pipelines.iceberg.names import BRONZE

pytestmark = pytest.mark.unit


@pytest.fixture
def table(tmp_path: Path) -> Table:
    return ensure_table(open_catalog(settings_for(tmp_path)), BRONZE, TABLE, SCHEMA)


def duck(home: Path) -> duckdb.DuckDBPyConnection:
    # no downloads, no ~/.duckdb: a missing extension must fail here, not be fetched
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "extension_directory": str(home / "no-extensions-here"),
        }
    )
    load_iceberg(con)
    return con


def test_extension_files_come_from_the_packages() -> None:
    for name in ("iceberg", "avro"):
        path = extension_file(name)
        assert path.parts[-2:] == (f"v{duckdb.__version__}", f"{name}.duckdb_extension")
        assert f"duckdb_extension_{name}" in path.parts


def test_duckdb_sees_exactly_the_committed_rows(tmp_path: Path, table: Table) -> None:
    commit_batch(table, make_batch(0, 0, 10))
    commit_batch(table, make_batch(1, 0, 5))
    died = run_child(tmp_path, 0, [[10, 20]], crash_at="staged", crash_batch=0)
    assert died.returncode == CRASH_EXIT, died.stderr  # an orphan data file, not in the table
    current = load_table(open_catalog(settings_for(tmp_path)), BRONZE, TABLE)
    con = duck(tmp_path)
    rows = con.execute(
        "SELECT _kafka_partition, _offset, payload FROM iceberg_scan(?) ORDER BY ALL",
        [current.metadata_location],
    ).fetchall()
    expected = [(0, o, f"p0o{o}") for o in range(10)] + [(1, o, f"p1o{o}") for o in range(5)]
    assert rows == expected
    snapshots = con.execute(
        "SELECT count(*) FROM iceberg_snapshots(?)", [current.metadata_location]
    ).fetchone()
    assert snapshots == (2,)
    assert not (tmp_path / "no-extensions-here").exists()
