"""The code location loads with no services and has the promised shape, for any table names."""

import socket

import dagster as dg
import pytest

from pipelines.config import Settings
from pipelines.defs import build_definitions
from pipelines.defs.keys import bronze_key, silver_key
from pipelines.defs.lakeview import markdown_table
from pipelines.defs.reconcile import plan_columns
from pipelines.defs.sensors import pending_events
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

ODD = ('"Odd Schema"."we""ird.name"', "public.x", '"a__b".c', 'a."b__c"', "shop.orders")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def odd_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    port = _closed_port()  # nothing listens: loading must not need any service
    return Settings(
        home=tmp_path_factory.mktemp("home"),
        tables=ODD,
        pg_port=port,
        kafka_port=port,
        connect_port=port,
    )


@pytest.fixture(scope="module")
def defs(odd_settings: Settings) -> dg.Definitions:
    return build_definitions(odd_settings)


def test_every_table_has_bronze_and_silver_with_distinct_valid_keys(
    defs: dg.Definitions, odd_settings: Settings
) -> None:
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    tables = odd_settings.captured
    assert (
        len({bronze_key(t) for t in tables}) == len(tables) == len({silver_key(t) for t in tables})
    )
    for t in tables:
        assert bronze_key(t) in keys and silver_key(t) in keys
        assert graph.get(silver_key(t)).parent_keys == {bronze_key(t)}
        assert graph.get(bronze_key(t)).group_name == "bronze"
        assert graph.get(silver_key(t)).group_name == "silver"
        assert {"kafka", "parquet"} <= graph.get(bronze_key(t)).kinds
        assert graph.get(silver_key(t)).automation_condition is not None


def test_bronze_is_one_subsettable_multi_asset(
    defs: dg.Definitions, odd_settings: Settings
) -> None:
    bronze = [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and a.op.name == "bronze_landing"
    ]
    assert len(bronze) == 1
    assert bronze[0].can_subset
    assert bronze[0].keys == {bronze_key(t) for t in odd_settings.captured}


def test_checks_per_table(defs: dg.Definitions, odd_settings: Settings) -> None:
    graph = defs.resolve_asset_graph()
    names = {(k.asset_key, k.name) for k in graph.asset_check_keys}
    for t in odd_settings.captured:
        assert (silver_key(t), "matches_postgres") in names
        assert (silver_key(t), "commit_to_silver_lag") in names
        assert (bronze_key(t), "quarantine_empty") in names


def test_automation_sensor_schedule_and_resources(defs: dg.Definitions) -> None:
    sensors = {s.name for s in defs.sensors}
    assert {"kafka_new_events", "changelake_automation"} <= sensors
    assert {s.name for s in defs.schedules} == {"nightly_lake_maintenance"}
    assert {"changelake", "kafka", "postgres", "warehouse", "dbt"} <= set(defs.resources)


def test_dbt_sources_join_the_lake_assets() -> None:
    """With the demo tables, every dbt source resolves to a bronze/silver asset: one graph."""
    demo = build_definitions(Settings())
    graph = demo.resolve_asset_graph()
    marts = [k for k in graph.get_all_asset_keys() if k.path[0] == "marts"]
    assert marts, "the dbt project's models are not in the code location"
    lake = {k for k in graph.get_all_asset_keys() if k.path[0] in ("bronze", "silver")}
    roots = {p for k in marts for p in graph.get(k).parent_keys if p.path[0] != "marts"}
    assert roots and roots <= lake, roots - lake
    assert all(graph.get(k).group_name == "marts" for k in marts)
    assert all("dbt" in graph.get(k).kinds for k in marts)


def test_pending_events_counts_only_captured_topics() -> None:
    s = Settings(tables=("shop.orders", "shop.customers"))
    orders, customers = s.captured
    end = {
        ("changelake.shop.orders", 0): 10,
        ("changelake.shop.customers", 0): 5,
        ("__debezium-heartbeat.changelake", 0): 999,
        ("changelake.transaction", 0): 40,
    }
    landed = {("changelake.shop.orders", 0): 9, ("changelake.shop.customers", 0): 2}
    assert pending_events(s, end, landed, s.captured) == {customers: 2}
    assert pending_events(s, end, {}, s.captured) == {orders: 10, customers: 5}
    assert pending_events(s, {}, {}, s.captured) == {}


def test_markdown_preview_escapes_and_truncates() -> None:
    md = markdown_table([{"a": "x|y", "b": None, "c": "z" * 100}], ["a", "b", "c"])
    lines = md.splitlines()
    assert lines[0] == "| a | b | c |"
    assert "x\\|y" in lines[2] and "NULL" in lines[2] and "z" * 100 not in lines[2]


def test_reconcile_compares_only_identically_rendered_columns() -> None:
    plan = plan_columns(
        [
            ("id", "int8"),
            ("name", "text"),
            ("price", "numeric"),
            ("at", "timestamptz"),
            ("gone", "int4"),
        ],
        {
            "id": "BIGINT",
            "name": "VARCHAR",
            "price": "DECIMAL(10,2)",
            "at": "TIMESTAMP WITH TIME ZONE",
        },
    )
    assert plan.compared == ["id", "name"]
    assert set(plan.skipped) == {"price", "at", "gone"}
    assert QualifiedName.parse("shop.orders").schema == "shop"


def test_summary_of_parquet_has_count_schema_and_newest_rows_first(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.defs.lakeview import summarize_parquet

    for i in range(2):
        part = pa.table(
            {"id": [i * 10 + k for k in range(10)], "name": [f"n|{k}" for k in range(10)]}
        )
        pq.write_table(part, tmp_path / f"p{i}.parquet")
    meta = summarize_parquet(sorted(tmp_path.glob("*.parquet")), order_by="id DESC")
    assert meta["dagster/row_count"].value == 20
    assert [c.name for c in meta["dagster/column_schema"].columns] == ["id", "name"]
    preview = meta["preview"].value.splitlines()
    assert len(preview) == 2 + 5 and preview[2].startswith("| 19 |")
    assert summarize_parquet([]) == {"dagster/row_count": 0}


def test_lake_fingerprint_ignores_row_order_and_sees_one_changed_value(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.defs.reconcile import duck_fingerprint

    rows = {"id": [1, 2, 3], "name": ["a", None, "c"]}
    pq.write_table(pa.table(rows), tmp_path / "a.parquet")
    pq.write_table(pa.table({k: v[::-1] for k, v in rows.items()}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", None, "C"]}), tmp_path / "c.parquet")
    a, b, c = (duck_fingerprint([tmp_path / f"{n}.parquet"], ["id", "name"]) for n in "abc")
    assert a == b and a.rows == 3
    assert a.checksum != c.checksum
    assert duck_fingerprint([], ["id"]).rows == 0
