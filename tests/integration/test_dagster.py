"""The Dagster code location against the real stack: the whole graph, then event-driven updates.

The demo shop is created and captured in the session stack, a short seeded workload runs,
and everything lands in this module's own lake and warehouse. The sensor and declarative
automation are driven in-process (``build_sensor_context`` / ``evaluate_automation_conditions``,
the daemon's own evaluation API) so the test decides when each tick happens.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

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
            env[f"CHANGELAKE_{name.upper()}"] = (
                ",".join(value) if isinstance(value, tuple) else str(value)
            )
    return env


def make_shop(stack, root: Path, **extra: object) -> Settings:  # noqa: ANN001
    """The shop captured, a little traffic streamed, and a private lake + warehouse."""
    from pipelines.shop import SHOP_TABLES, shop_ddl
    from pipelines.shop.demo import wait_until_streamed
    from pipelines.shop.workload import run_workload

    stack.capture(shop_ddl(), *(str(t) for t in SHOP_TABLES))
    fields = stack.settings.model_dump()
    fields.update(
        lake=root / "lake",
        warehouse=root / "warehouse.duckdb",
        tables=tuple(str(t) for t in SHOP_TABLES),
        **extra,
    )
    settings = Settings(**fields)
    run_workload(settings, rate=10, duration=4, connections=1, seed=7)
    wait_until_streamed(settings)
    return settings


@pytest.fixture(scope="module")
def shop(stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_shop(stack, tmp_path_factory.mktemp("dagster_lake"))


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="module")
def defs(shop: Settings) -> dg.Definitions:
    return build_definitions(shop)


def _everything(defs: dg.Definitions) -> list:
    return [*defs.assets, *defs.asset_checks]


def materialise_everything(
    defs: dg.Definitions, shop: Settings, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Materialise every asset with every check: all of them run and pass, and the orders
    reconciliation compared real rows and columns, not an empty table."""
    result = dg.materialize(_everything(defs), resources=defs.resources, instance=instance)
    assert result.success
    graph = defs.resolve_asset_graph()
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
    orders = next(
        e
        for e in evaluations
        if e.asset_key == silver_key(_table(shop, "shop.orders"))
        and e.check_name == "matches_postgres"
    )
    assert orders.metadata["postgres_rows"].value > 0
    assert orders.metadata["silver_rows"].value == orders.metadata["postgres_rows"].value
    assert "order_id" in orders.metadata["compared_columns"].value
    return result


def test_whole_graph_materialises_and_every_check_passes(
    defs: dg.Definitions, shop: Settings, instance: dg.DagsterInstance
) -> None:
    materialise_everything(defs, shop, instance)


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


def test_no_password_in_definitions_run_config_or_records(
    defs: dg.Definitions, shop: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app role gets a random password for this test; the run must use it (the
    reconciliation check connects with it) and nothing Dagster stores or shows may hold it."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value
    from psycopg import sql

    secret, cdc_secret = (f"pw-{uuid.uuid4().hex}" for _ in range(2))
    monkeypatch.setenv("CHANGELAKE_PG_PASSWORD", secret)
    monkeypatch.setenv("CHANGELAKE_CDC_PASSWORD", cdc_secret)  # only the connector uses it
    alter = sql.SQL("ALTER ROLE {} PASSWORD {}")
    settings = Settings(**shop.model_dump(exclude={"pg_password", "cdc_password"}))
    assert settings.pg_password == secret
    customers = _table(settings, CUSTOMERS)
    with shop_conn(shop) as conn:
        conn.execute(alter.format(sql.Identifier(shop.pg_user), sql.Literal(secret)))
    try:
        loaded = build_definitions(settings)
        with dg.instance_for_test() as instance:
            run = dg.materialize(
                _everything(loaded),
                resources=loaded.resources,
                instance=instance,
                selection=dg.AssetSelection.assets(bronze_key(customers), silver_key(customers)),
            )
            assert run.success
            checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
            assert checks.get("matches_postgres") is True, checks  # it did log in with `secret`
            record = instance.get_run_by_id(run.run_id)
            stored = [
                RepositorySnap.from_def(loaded.get_repository_def()),
                record,
                instance.get_job_snapshot(record.job_snapshot_id),
                instance.get_execution_plan_snapshot(record.execution_plan_snapshot_id),
                *instance.all_logs(run.run_id),
                *instance.fetch_materializations(silver_key(customers), limit=5).records,
            ]
            text = "\n".join(serialize_value(item) for item in stored)
    finally:
        with shop_conn(settings) as conn:
            conn.execute(alter.format(sql.Identifier(shop.pg_user), sql.Literal(shop.pg_password)))
    assert str(settings.lake_root) in text  # resource config and metadata are in there
    assert secret not in text and cdc_secret not in text


def test_cli_land_and_compact_are_recorded_like_the_assets(
    shop: Settings, instance: dg.DagsterInstance
) -> None:
    """`changelake land` / `compact` leave runless materialisations in the instance under
    the home, with the metadata the assets reported in the first test."""
    from pipelines.defs.runless import changelake_instance

    customers = _table(shop, CUSTOMERS)
    for command in (["land"], ["compact"]):
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "changelake"), *command],
            cwd=REPO_ROOT,
            env=settings_env(shop),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "not recorded" not in proc.stderr
    with changelake_instance(shop) as recorded:
        for key in (bronze_key(customers), silver_key(customers)):
            (cli,) = recorded.fetch_materializations(key, limit=1).records
            (asset,) = instance.fetch_materializations(key, limit=1).records
            assert cli.run_id == "" and asset.run_id
            assert set(cli.asset_materialization.metadata) - {"warnings"} == set(
                asset.asset_materialization.metadata
            ) - {"warnings"}
        (silver,) = recorded.fetch_materializations(silver_key(customers), limit=1).records
        rows = silver.asset_materialization.metadata["dagster/row_count"].value
        with shop_conn(shop) as conn:
            assert rows == conn.execute("SELECT count(*) FROM shop.customers").fetchone()[0]


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _locations(port: int) -> dict[str, str]:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    return {e["name"]: e["loadStatus"] for e in entries}


def test_ui_serves_location_changelake_and_stops_whole_on_sigterm(tmp_path: Path) -> None:
    """`changelake ui` (no stack needed): the code location is `changelake`; SIGTERM stops
    the webserver, daemon and code server with it within a bound."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CHANGELAKE_HOME": str(tmp_path / "home")}
    log = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "changelake"), "ui", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, locations = time.monotonic() + 300, {}
        while time.monotonic() < deadline and locations.get("changelake") != "LOADED":
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            with contextlib.suppress(OSError):  # not listening yet
                locations = _locations(port)
            time.sleep(2)
        assert locations == {"changelake": "LOADED"}, locations
        children = _descendants(ui.pid)
        assert len(children) >= 3, children  # dagster dev, webserver, daemon (+ code server)
        started = time.monotonic()
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
        while time.monotonic() - started < 45 and any(_alive(p) for p in children):
            time.sleep(0.5)
        assert not [p for p in children if _alive(p)], (tmp_path / "ui.log").read_text()[-3000:]
    finally:
        if ui.poll() is None:
            ui.kill()
        log.close()


def shop_conn(settings: Settings):
    import psycopg

    return psycopg.connect(settings.pg_dsn(), autocommit=True)
