"""Names from outside must never inject SQL or escape the lake through a path."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.naming import (
    InvalidName,
    QualifiedName,
    from_path_segment,
    path_segment,
    quote_ident,
    quote_literal,
    split_name_list,
)

pytestmark = pytest.mark.unit
# Timing is not what these properties test; the machine may be busy.
relaxed = settings(deadline=None, max_examples=150)
_duck = duckdb.connect()

names = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
)


@relaxed
@given(names)
def test_path_segment_is_one_safe_reversible_segment(name: str) -> None:
    seg = path_segment(name)
    assert "/" not in seg and "\\" not in seg and "=" not in seg and "." not in seg
    assert seg not in ("", ".", "..")
    assert from_path_segment(seg) == name


@relaxed
@given(names)
def test_quoted_identifier_round_trips_through_duckdb(name: str) -> None:
    got = _duck.execute(f"SELECT 1 AS {quote_ident(name)}").description[0][0]
    assert got == name


@relaxed
@given(names)
def test_quoted_literal_round_trips_through_duckdb(value: str) -> None:
    assert _duck.execute(f"SELECT {quote_literal(value)}").fetchone()[0] == value


@relaxed
@given(names, names)
def test_qualified_name_text_round_trip(schema: str, table: str) -> None:
    qn = QualifiedName(schema, table)
    assert QualifiedName.parse(str(qn)) == qn
    assert split_name_list(f"{qn}, {qn}") == [str(qn), str(qn)]


@relaxed
@given(names, names, names, names)
def test_asset_names_are_dagster_safe_and_distinct(s1: str, t1: str, s2: str, t2: str) -> None:
    a, b = QualifiedName(s1, t1), QualifiedName(s2, t2)
    for qn in (a, b):
        assert all(c.isascii() and (c.isalnum() or c == "_") for c in qn.asset_name)
    assert (a.asset_name == b.asset_name) == (a == b)


def test_asset_names_stay_readable_and_never_collide_on_the_separator() -> None:
    assert QualifiedName("shop", "order_items").asset_name == "shop__order_items"
    assert QualifiedName("a__b", "c").asset_name != QualifiedName("a", "b__c").asset_name
    assert QualifiedName("a.b", "c").asset_name != QualifiedName("ax2ex_b", "c").asset_name


def test_parse_forms() -> None:
    assert QualifiedName.parse("orders") == QualifiedName("public", "orders")
    assert QualifiedName.parse('"my.schema"."odd ""t"""') == QualifiedName("my.schema", 'odd "t"')
    for bad in ("a.b.c", '"open', "a.", 'x"y.z'):
        with pytest.raises(InvalidName):
            QualifiedName.parse(bad)
    with pytest.raises(InvalidName):
        quote_ident("nul\x00")


def test_captured_tables_come_from_one_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGELAKE_TABLES", 'shop.a, "we.ird"."t,b", plain')
    got = Settings().captured
    assert got == (
        QualifiedName("shop", "a"),
        QualifiedName("we.ird", "t,b"),
        QualifiedName("public", "plain"),
    )
    monkeypatch.setenv("CHANGELAKE_TABLES", "a.b.c")
    with pytest.raises(ValueError):
        Settings()


def test_env_example_documents_every_setting_with_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from pipelines.config import REPO_ROOT

    for var in [v for v in os.environ if v.startswith("CHANGELAKE_")]:
        monkeypatch.delenv(var)  # the integration fixture may have set some for the session
    text = (REPO_ROOT / ".env.example").read_text()
    defaults = Settings(_env_file=None)
    for name in Settings.model_fields:
        var = f"CHANGELAKE_{name.upper()}"
        assert f"# {var}=" in text, f".env.example does not document {var}"
        value = getattr(defaults, name)
        if isinstance(value, int | str) and not isinstance(value, bool):
            assert f"# {var}={value}\n" in text, f"{var}: default {value!r} not shown"
