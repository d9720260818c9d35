"""One DuckDB database per process loads the Iceberg extensions once (pipelines/iceberg/engine.py):
its cursors are separate connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.iceberg import engine

pytestmark = pytest.mark.unit


def test_connections_share_the_loaded_extensions_and_nothing_else(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)
    with engine.connect(settings) as a, engine.connect(settings) as b:
        a.execute("CREATE TEMP TABLE t AS SELECT 1 AS x")
        b.execute("CREATE TEMP TABLE t AS SELECT 2 AS x")  # its own temp schema: no clash
        assert a.sql("SELECT x FROM t").fetchall() == [(1,)]
        assert b.sql("SELECT x FROM t").fetchall() == [(2,)]
        loaded = (
            "SELECT count(*) FROM duckdb_extensions() WHERE loaded AND extension_name = 'iceberg'"
        )
        assert a.execute(loaded).fetchone() == (1,) and b.execute(loaded).fetchone() == (1,)
    with engine.connect(settings) as c:  # a closed cursor's objects went with it
        assert c.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'").fetchone() == (
            0,
        )
    assert (
        len([k for k in engine._SHARED if k[1] == str(engine.extension_directory(settings))]) == 1
    )
