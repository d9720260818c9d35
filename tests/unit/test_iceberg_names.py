"""Captured table names -> Iceberg identifiers: safe characters, reversible, distinct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.iceberg.catalog import catalog_properties
from pipelines.iceberg.names import (
    from_table_name,
    identifier,
    table_name,
)
from pipelines.naming import InvalidName, QualifiedName

pytestmark = pytest.mark.unit

# PostgreSQL identifiers: up to 63 bytes of UTF-8, anything but NUL (and no lone surrogate: no
# PostgreSQL text holds one, and it has no UTF-8 encoding)
pg_ident = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda s: len(s.encode()) <= 63)


@given(pg_ident, pg_ident)
def test_table_names_are_engine_safe_and_reversible(schema: str, table: str) -> None:
    name = QualifiedName(schema, table)
    encoded = table_name(name)
    assert re.fullmatch(r"[a-z0-9_]+", encoded), encoded
    assert from_table_name(encoded) == name


@given(pg_ident, pg_ident, pg_ident, pg_ident)
def test_distinct_tables_get_distinct_names(s1: str, t1: str, s2: str, t2: str) -> None:
    a, b = QualifiedName(s1, t1), QualifiedName(s2, t2)
    assert (table_name(a) == table_name(b)) == (a == b)


def test_ordinary_names_stay_readable_and_odd_ones_are_escaped() -> None:
    assert identifier("bronze", QualifiedName("shop", "order_items")) == (
        "bronze",
        "shop__order_items",
    )
    assert table_name(QualifiedName("Shop", "a b")) == "z0x53xhop__z0ax20xb"
    assert table_name(QualifiedName("z0", "x__y")) == "z0z0__z0x78xx5fxx5fxy"
    assert from_table_name("z0z0__z0x78xx5fxx5fxy") == QualifiedName("z0", "x__y")


def test_bad_layers_names_and_lengths_are_refused() -> None:
    with pytest.raises(InvalidName, match="unknown lake layer"):
        identifier("gold", QualifiedName("shop", "orders"))
    with pytest.raises(InvalidName, match="255"):
        table_name(QualifiedName("-" * 63, "-" * 63))
    for text in ("shop", "Shop__x", "z0q__x", "shop__a_", "z0xzzx__a", "z0x61x__a"):
        with pytest.raises(InvalidName):
            from_table_name(text)


def test_catalog_defaults_live_under_the_lake(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)
    props = catalog_properties(settings)
    assert props["uri"] == f"sqlite:///{tmp_path}/lake/iceberg/catalog.db?timeout=30"
    assert props["warehouse"] == f"{tmp_path}/lake/iceberg/warehouse"
    assert set(props) == {"uri", "warehouse"}  # a local warehouse needs no FileIO options
    shared = Settings(
        _env_file=None,
        home=tmp_path,
        iceberg_catalog_uri="postgresql+psycopg://u:p@db/cat",
        iceberg_warehouse="s3://bucket/lake/",
    )
    assert catalog_properties(shared) == {
        "uri": "postgresql+psycopg://u:p@db/cat",
        "warehouse": "s3://bucket/lake",
        "s3.endpoint": "http://127.0.0.1:19000",  # the managed endpoint (s3proxy)
        "s3.region": "us-east-1",
        "s3.access-key-id": "changelake",
        "s3.secret-access-key": "changelake-s3",
        "s3.path-style-access": "true",
    }
