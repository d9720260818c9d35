"""The code location loads with no services and has the promised shape, for any table names."""

import socket
import uuid

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
    roots = _outside_parents(graph, [k for k in graph.get_all_asset_keys() if _is_dbt(graph, k)])
    assert roots and roots <= lake, roots - lake
    assert all(graph.get(k).group_name == "marts" for k in marts)
    assert all("dbt" in graph.get(k).kinds for k in marts)


def _is_dbt(graph, key: dg.AssetKey) -> bool:
    return "dbt" in graph.get(key).kinds


def _outside_parents(graph, keys: list[dg.AssetKey]) -> set[dg.AssetKey]:
    """Parents of ``keys`` that are not dbt models themselves."""
    return {p for k in keys for p in graph.get(k).parent_keys if not _is_dbt(graph, p)}


def test_dbt_layers_are_their_own_groups_and_keys() -> None:
    """staging, intermediate and marts are three groups; each model's key starts with its group."""
    graph = build_definitions(Settings()).resolve_asset_graph()
    dbt = [k for k in graph.get_all_asset_keys() if _is_dbt(graph, k)]
    groups = {graph.get(k).group_name for k in dbt}
    assert groups == {"staging", "intermediate", "marts"}
    assert all(k.path[0] == graph.get(k).group_name for k in dbt)
    assert dg.AssetKey(["staging", "stg_customers"]) in dbt
    assert dg.AssetKey(["intermediate", "int_customers_versions"]) in dbt
    # marts read the lake only through staging/intermediate, which read bronze/silver
    assert all(p.path[0] in ("bronze", "silver") for p in _outside_parents(graph, dbt))


def test_no_secret_in_the_loaded_definitions(
    odd_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the code location hands to Dagster (and the UI) omits the passwords."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    secrets = {name: f"s3cret-{uuid.uuid4().hex}" for name in ("PG_PASSWORD", "CDC_PASSWORD")}
    for name, value in secrets.items():
        monkeypatch.setenv(f"CHANGELAKE_{name}", value)
    settings = Settings(**odd_settings.model_dump(exclude={"pg_password", "cdc_password"}))
    assert settings.pg_password == secrets["PG_PASSWORD"]  # the environment is what we load
    defs = build_definitions(settings)
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert str(settings.lake_root) in snapshot  # the snapshot does carry resource config
    for value in secrets.values():
        assert value not in snapshot
    # ... and a run still gets the password, from the environment of the process running it
    assert defs.resources["changelake"].settings().pg_password == secrets["PG_PASSWORD"]
    assert secrets["PG_PASSWORD"] in defs.resources["changelake"].settings().pg_dsn()


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
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.defs.reconcile import duck_fingerprint

    rows = {"id": [1, 2, 3], "name": ["a", None, "c"]}
    pq.write_table(pa.table(rows), tmp_path / "a.parquet")
    pq.write_table(pa.table({k: v[::-1] for k, v in rows.items()}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", None, "C"]}), tmp_path / "c.parquet")
    with duckdb.connect() as con:
        a, b, c = (
            duck_fingerprint(con, f"'{tmp_path / f'{n}.parquet'}'", ["id", "name"]) for n in "abc"
        )
        assert duck_fingerprint(con, None, ["id"]).rows == 0
    assert a == b and a.rows == 3
    assert a.checksum != c.checksum


def test_a_land_outside_dagster_is_recorded_as_the_asset_would(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """``report_landing`` writes runless materialisations into the instance under the home,
    with exactly the metadata keys the bronze asset reports; a broken home only warns."""
    from pipelines.bronze.lander import LandingResult
    from pipelines.defs.runless import changelake_instance, report_compaction, report_landing
    from pipelines.defs.stagemeta import bronze_metadata
    from pipelines.silver.compaction import CompactionResult

    settings = Settings(home=tmp_path / "home", tables=ODD[:2])
    odd, plain = settings.captured
    result = LandingResult(events=3, per_table={str(odd): 3}, seconds=0.5)
    assert report_landing(settings, result, [odd])
    with changelake_instance(settings) as instance:
        assert instance.root_directory == str((tmp_path / "home" / "dagster").resolve())
        (record,) = instance.fetch_materializations(bronze_key(odd), limit=10).records
        event = record.asset_materialization
        assert record.run_id == ""  # runless
        assert set(event.metadata) == set(bronze_metadata(settings, odd, result))
        assert event.metadata["events_landed"].value == 3
        assert not instance.fetch_materializations(bronze_key(plain), limit=10).records
        # the same instance object can be handed in (a long-running caller keeps one)
        fields = {f: None for f in CompactionResult.__dataclass_fields__}
        compaction = CompactionResult(**{**fields, "table": str(plain), "rows": 7})
        assert report_compaction(settings, [compaction], instance=instance)
        (silver,) = instance.fetch_materializations(silver_key(plain), limit=10).records
        assert silver.asset_materialization.metadata["compaction_rows"].value == 7

    broken = Settings(home=tmp_path / "a-file", tables=ODD[:1])
    broken.home.write_text("not a directory")
    caplog.clear()
    assert not report_landing(broken, result)
    (warning,) = caplog.records
    assert warning.levelname == "WARNING" and "\n" not in warning.getMessage()


def test_one_code_location_name_for_ui_and_pyproject(tmp_path) -> None:
    import json
    import tomllib

    from pipelines.config import REPO_ROOT
    from pipelines.instance import CODE_LOCATION, CODE_MODULE, write_workspace

    tool = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert tool == {"module_name": CODE_MODULE, "code_location_name": CODE_LOCATION}
    (entry,) = json.loads(write_workspace(tmp_path).read_text())["load_from"]
    assert entry["python_module"]["location_name"] == "changelake"
    assert entry["python_module"]["module_name"] == "pipelines.definitions"
