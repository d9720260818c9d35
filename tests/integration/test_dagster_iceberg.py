"""The Dagster code location with the lake stored in Iceberg (``CHANGELAKE_LAKE_FORMAT=iceberg``).

The same shop and traffic as ``test_dagster``, in a lake of its own: every asset of the graph
materialises and every check passes, the checks reading the Iceberg tables (silver against
PostgreSQL, its watermark, the quarantine table), and dbt builds the marts from the Iceberg
tables (``DBT_TARGET=iceberg``). Nothing is written as Parquet bronze or silver.
"""

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from test_dagster import make_shop, materialise_everything

from pipelines.config import Settings
from pipelines.defs import build_definitions
from pipelines.defs.keys import ICEBERG_KEY, bronze_key, silver_key
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import SILVER
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:  # noqa: ANN001
    return make_shop(stack, tmp_path_factory.mktemp("dagster_iceberg"), lake_format="iceberg")


def test_whole_graph_on_iceberg_materialises_and_every_check_passes(stack, shop: Settings) -> None:  # noqa: ANN001
    defs = build_definitions(shop)
    assert ICEBERG_KEY not in defs.resolve_asset_graph().get_all_asset_keys()  # nothing to copy
    with dg.instance_for_test() as instance:
        result = materialise_everything(defs, shop, instance)
    evaluations = result.get_asset_check_evaluations()
    bronze = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key
        == bronze_key(QualifiedName("shop", "orders"))
    )
    assert bronze["files_total"].value > 0 and bronze["dagster/row_count"].value > 0

    orders = QualifiedName("shop", "orders")
    silver = load_table(open_catalog(shop), SILVER, orders)
    check = next(
        e
        for e in evaluations
        if e.asset_key == silver_key(orders) and e.check_name == "matches_postgres"
    )
    assert check.metadata["silver_rows"].value == silver.scan().to_arrow().num_rows
    fresh = next(
        e
        for e in evaluations
        if e.asset_key == silver_key(orders) and e.check_name == "commit_to_silver_lag"
    )
    assert fresh.metadata["snapshot_id"].value.startswith("0000000001-")  # changelake's id
    quarantine = next(e for e in evaluations if e.check_name == "quarantine_empty")
    assert quarantine.metadata["quarantined"].value == 0
    assert "quarantine." in quarantine.metadata["quarantine"].value

    with stack.pg() as con:
        pg_orders = con.execute("SELECT count(*) FROM shop.orders").fetchone()[0]
    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        marts = con.execute("SELECT count(*) FROM marts.fct_orders").fetchone()[0]
    assert marts == pg_orders > 0  # dbt read the Iceberg tables: the Parquet lake is empty
    lake = Path(shop.lake_root)
    assert not (lake / "bronze").exists() and not (lake / "silver").exists()


def test_a_compaction_outside_dagster_is_recorded_with_what_its_iceberg_commit_wrote(
    stack,  # noqa: ANN001
    shop: Settings,
) -> None:
    """What ``changelake run`` reports after compacting (``runless.report_compaction``): one
    silver materialisation with the commit's snapshots and bytes."""
    from pipelines import lakeformat
    from pipelines.defs.runless import report_compaction
    from pipelines.landing import land
    from pipelines.shop.demo import wait_until_streamed

    with stack.pg() as con:
        con.execute(
            "UPDATE shop.orders SET status = status WHERE order_id IN "
            "(SELECT order_id FROM shop.orders ORDER BY order_id LIMIT 3)"
        )
    wait_until_streamed(shop)
    land(shop, until_caught_up=True)
    done = lakeformat.compact_table(shop, "shop.orders")
    assert done.changed and done.events_applied >= 3
    with dg.instance_for_test() as instance:
        assert report_compaction(shop, [done], instance=instance, source="changelake run")
        event = instance.get_latest_materialization_event(
            silver_key(QualifiedName("shop", "orders"))
        )
    meta = event.asset_materialization.metadata
    assert meta["compaction_events_applied"].value == done.events_applied
    assert meta["iceberg_snapshots"].value and meta["iceberg_bytes_written"].value > 0
