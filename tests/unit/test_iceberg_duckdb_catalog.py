"""The DuckDB file over the Iceberg tables (pipelines/iceberg/duckdb_catalog.py), read-only.

Its views must hold the published tables' rows; its ``as_of_`` macro the rows ``as_of`` over
Iceberg gives at each commit instant (and so the lake's, test_iceberg_timetravel); its
``history_`` macro every version the lake's ``history`` gives for a key.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import recorded_lake
from iceberg_checks import as_text, commit_instants, publish_in_two_halves, sorted_text

from pipelines.config import Settings
from pipelines.iceberg import engine
from pipelines.iceberg import timetravel as iceberg_tt
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.duckdb_catalog import catalog_path
from pipelines.iceberg.names import BRONZE, SILVER, table_name
from pipelines.naming import QualifiedName
from pipelines.silver import timetravel

pytestmark = pytest.mark.unit
QN = QualifiedName("zoo", "typezoo")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(_env_file=None, home=tmp_path / "home")
    report = publish_in_two_halves(settings)
    assert report.catalog_file == catalog_path(settings)
    return settings


def _rows(con, sql: str, params: list | None = None) -> pa.Table:  # noqa: ANN001
    return con.execute(sql, params or []).fetch_arrow_table()


def test_the_views_hold_the_published_tables(settings: Settings) -> None:
    catalog = open_catalog(settings)
    rows = 0
    with engine.connect(settings, str(catalog_path(settings)), read_only=True) as con:
        for layer in (BRONZE, SILVER):
            for qn in recorded_lake.TABLES:
                name = table_name(qn)
                got = _rows(con, f'SELECT * FROM {layer}."{name}"')  # noqa: S608
                want = load_table(catalog, layer, qn).scan().to_arrow()
                assert got.num_rows == want.num_rows, (layer, qn)
                rows += got.num_rows
        assert _rows(con, 'SELECT * FROM bronze."_transactions"').num_rows > 0
    assert rows > 0


def test_the_as_of_macro_reads_what_as_of_over_iceberg_reads(settings: Settings) -> None:
    name = table_name(QN)
    with engine.connect(settings, str(catalog_path(settings)), read_only=True) as con:
        for ts in commit_instants(settings, QN, most=8):
            got = _rows(con, f'SELECT * FROM silver."as_of_{name}"(?)', [ts])  # noqa: S608
            want = iceberg_tt.as_of(settings, QN, ts)
            cols = [as_text(c) for c in want.column_names]
            assert sorted_text(got, cols) == sorted_text(want, cols), ts


def test_the_history_macro_gives_every_version_of_a_row(settings: Settings) -> None:
    name = table_name(QN)
    key = timetravel.as_of(settings, QN, "2100-01-01T00:00:00Z")["id"][0].as_py()
    want = to_iceberg(timetravel.history(settings, QN, [key]))
    with engine.connect(settings, str(catalog_path(settings)), read_only=True) as con:
        got = _rows(con, f'SELECT * FROM silver."history_{name}"(?)', [key])  # noqa: S608
    common = [c for c in want.column_names if c in got.column_names]
    assert len(common) > 5 and want.num_rows >= 1
    cols = [as_text(c) for c in common]
    assert sorted_text(got, cols) == sorted_text(want, cols)


def test_history_from_iceberg_gives_every_version_the_lakes_history_gives(
    settings: Settings,
) -> None:
    # ``changelake history`` on the Iceberg-stored lake: the same rule over Iceberg bronze
    keys = timetravel.as_of(settings, QN, "2100-01-01T00:00:00Z")["id"].to_pylist()[:3]
    assert keys
    for key in keys:
        want = to_iceberg(timetravel.history(settings, QN, [key]))
        got = iceberg_tt.history(settings, QN, [key])
        assert want.num_rows >= 1 and got.num_rows == want.num_rows, key
        common = [c for c in want.column_names if c in got.column_names]
        assert len(common) == len(want.column_names), set(want.column_names) - set(common)
        cols = [as_text(c) for c in common]
        assert sorted_text(got, cols) == sorted_text(want, cols), key
    with pytest.raises(ValueError, match="expected 1 value"):
        iceberg_tt.history(settings, QN, [1, 2])
