"""The Dagster code location against the real stack: the whole graph, then event-driven updates.

The demo shop is created and captured in the session stack, a short seeded workload runs,
and everything lands in this module's own lake and warehouse. The sensor and declarative
automation are driven in-process (``build_sensor_context`` / ``evaluate_automation_conditions``,
the daemon's own evaluation API) so the test decides when each tick happens.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import dagster as dg
import duckdb
import pytest

from pipelines.config import REPO_ROOT, Settings
from pipelines.defs import build_definitions
from pipelines.defs.keys import bronze_key, silver_key

pytestmark = pytest.mark.integration

CUSTOMERS = "shop.customers"


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment under which a subprocess builds exactly ``settings``."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CHANGELAKE_{name.upper()}"] = ",".join(value) if name == "tables" else str(value)
    return env


@pytest.fixture(scope="module")
def shop(stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shop captured, a little traffic streamed, and a private lake + warehouse."""
    from pipelines.shop import SHOP_TABLES, shop_ddl
    from pipelines.shop.demo import wait_until_streamed
    from pipelines.shop.workload import run_workload

    stack.capture(shop_ddl(), *(str(t) for t in SHOP_TABLES))
    root = tmp_path_factory.mktemp("dagster_lake")
    fields = stack.settings.model_dump()
    fields.update(
        lake=root / "lake",
        warehouse=root / "warehouse.duckdb",
        tables=tuple(str(t) for t in SHOP_TABLES),
    )
    settings = Settings(**fields)
    run_workload(settings, rate=10, duration=4, connections=1, seed=7)
    wait_until_streamed(settings)
    return settings


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="module")
def defs(shop: Settings) -> dg.Definitions:
    return build_definitions(shop)


def _everything(defs: dg.Definitions) -> list:
    return [*defs.assets, *defs.asset_checks]


def test_whole_graph_materialises_and_every_check_passes(
    defs: dg.Definitions, shop: Settings, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(_everything(defs), resources=defs.resources, instance=instance)
    assert result.success
    graph = defs.resolve_asset_graph()
    materialised = {m.asset_key for m in result.get_asset_materialization_events()}
    materialised = {
        e.event_specific_data.materialization.asset_key
        for e in result.get_asset_materialization_events()
    }
    assert materialised == graph.get_all_asset_keys()
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key, e.check_name) for e in evaluations} == {
        (k.asset_key, k.name) for k in graph.asset_check_keys
    }
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.metadata)
        for e in evaluations
        if not e.passed
    ]
    assert not failed, failed

    # The reconciliation compared real rows and columns, not an empty table.
    orders = next(
        e
        for e in evaluations
        if e.asset_key == silver_key(_table(shop, "shop.orders"))
        and e.check_name == "matches_postgres"
    )
    assert orders.metadata["postgres_rows"].value > 0
    assert orders.metadata["silver_rows"].value == orders.metadata["postgres_rows"].value
    assert "order_id" in orders.metadata["compared_columns"].value


def test_command_line_materialises_a_selection(shop: Settings) -> None:
    key = "/".join(silver_key(_table(shop, CUSTOMERS)).path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "pipelines.definitions",
            "--select",
            key,
        ],
        cwd=REPO_ROOT,
        env=settings_env(shop),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout


def _table(settings: Settings, name: str):
    return next(t for t in settings.captured if str(t) == name)


def _requested(defs: dg.Definitions, evaluation) -> set[dg.AssetKey]:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {k for k in keys if evaluation.get_num_requested(k)}


def test_a_source_change_reaches_the_marts_by_sensor_and_automation(
    defs: dg.Definitions, shop: Settings, instance: dg.DagsterInstance
) -> None:
    from pipelines.shop.demo import wait_until_streamed

    customers = _table(shop, CUSTOMERS)
    sensor = next(s for s in defs.sensors if s.name == "kafka_new_events")
    auto = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    cursor = auto.cursor  # baseline: everything was just materialised by the test above

    # Nothing new in Kafka: the sensor launches nothing.
    idle = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources=defs.resources)
    )
    assert not idle.run_requests, idle.skip_message

    new_email = f"dagster-{uuid.uuid4().hex[:8]}@example.com"
    with shop_conn(shop) as conn:
        (customer_id,) = conn.execute(
            "UPDATE shop.customers SET email = %s WHERE customer_id = "
            "(SELECT min(customer_id) FROM shop.customers) RETURNING customer_id",
            (new_email,),
        ).fetchone()
    wait_until_streamed(shop)

    # Before landing, silver lags PostgreSQL by that one row: the reconciliation must say so.
    stale = dg.materialize(
        _everything(defs),
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
        selection=dg.AssetSelection.checks(
            dg.AssetCheckKey(silver_key(customers), "matches_postgres")
        ),
    )
    (verdict,) = stale.get_asset_check_evaluations()
    assert not verdict.passed
    assert verdict.metadata["postgres_rows"] == verdict.metadata["silver_rows"]  # same count,
    assert verdict.metadata["postgres_checksum"] != verdict.metadata["silver_checksum"]  # new value

    # The sensor sees the new event in Kafka and asks to land exactly that table.
    tick = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources=defs.resources)
    )
    assert len(tick.run_requests) == 1, tick.skip_message
    request = tick.run_requests[0]
    assert set(request.asset_selection) == {bronze_key(customers)}
    run = dg.materialize(
        _everything(defs),
        resources=defs.resources,
        instance=instance,
        selection=request.asset_selection,
        tags=request.tags,
    )
    assert run.success

    # Declarative automation carries it on, tick by tick, with no manual selection.
    automated: set[dg.AssetKey] = set()
    for _ in range(6):
        auto = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = auto.cursor
        wanted = _requested(defs, auto)
        if not wanted:
            break
        automated |= wanted
        run = dg.materialize(
            _everything(defs), resources=defs.resources, instance=instance, selection=list(wanted)
        )
        assert run.success
        failed = [e for e in run.get_asset_check_evaluations() if not e.passed]
        assert not failed, [(e.asset_key, e.check_name, e.metadata) for e in failed]
    assert silver_key(customers) in automated
    assert dg.AssetKey(["marts", "dim_customers"]) in automated

    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT email FROM marts.dim_customers WHERE customer_id = ? AND is_current",
            [customer_id],
        ).fetchall()
    assert rows == [(new_email,)]


def shop_conn(settings: Settings):
    import psycopg

    return psycopg.connect(settings.pg_dsn(), autocommit=True)
