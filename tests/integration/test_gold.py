"""Gold acceptance: a short shop workload through the whole pipeline into the star schema.

Real PostgreSQL, Debezium, Kafka, bronze, silver and dbt: fact totals must equal totals
computed directly in PostgreSQL; each SCD2 dimension has exactly one current row per live key
and no overlapping validity; the inventory value at the Black-Friday instant from the mart
equals silver time travel (``as_of``).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import duckdb
import pytest

from pipelines.shop.answers import inventory_value_check, inventory_value_mart
from pipelines.shop.demo import materialize_all, wait_until_streamed
from pipelines.shop.migrate import SHOP_TABLES, shop_ddl
from pipelines.shop.workload import run_workload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gold(stack):
    with stack.outbox():  # the shop's domain events land too (fct_order_lifecycle & co.)
        stack.capture(shop_ddl(), *(str(t) for t in SHOP_TABLES))
        settings = stack.settings
        work = run_workload(
            settings, rate=25, duration=12, connections=3, seed=7, black_friday=True
        )
        assert work.committed > 100 and work.failed == 0, work.errors[:5]
        wait_until_streamed(settings)
        materialize_all(settings, engine="plain", tables=SHOP_TABLES, say=lambda _m: None)
    yield stack, settings, work


def _warehouse(settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


def test_events_only_revenue_by_day_equals_cdc_revenue(gold) -> None:
    """Issue 16: revenue by day from the order domain events alone (outbox -> bronze
    _events/order -> fct_revenue_by_day_events) equals revenue by day from the CDC-built
    fct_orders; the lifecycle mart holds every order, with its steps in order."""
    _, settings, work = gold
    with _warehouse(settings) as con:
        cdc = con.execute(
            "SELECT cast(timezone('UTC', placed_at) AS date), count(*), sum(total_amount) "
            "FROM marts.fct_orders WHERE is_revenue GROUP BY 1 ORDER BY 1"
        ).fetchall()
        events = con.execute(
            "SELECT revenue_date, orders, revenue FROM marts.fct_revenue_by_day_events ORDER BY 1"
        ).fetchall()
        orders = con.execute("SELECT count(*) FROM marts.fct_orders").fetchone()[0]
        life = con.execute(
            "SELECT count(*), count(paid_at), count(shipped_at), count(*) FILTER (is_cancelled), "
            "count(*) FILTER (paid_at < placed_committed_at OR shipped_at < paid_at) "
            "FROM marts.fct_order_lifecycle"
        ).fetchone()
    assert work.by_action["pay_order"] > 0 and cdc, "the workload paid no order"
    assert events == cdc
    assert life[0] == orders and life[1] > 0 and life[2] > 0, life
    assert life[3] == work.by_action["cancel_order"], life
    assert life[4] == 0, "a step committed before the one it follows"


def test_fact_totals_equal_postgres(gold) -> None:
    stack, settings, _ = gold
    with stack.pg() as pg:
        pg_orders = pg.execute(
            "SELECT status::text, count(*), sum(total_amount) FROM shop.orders GROUP BY 1 ORDER BY 1"
        ).fetchall()
        pg_items = pg.execute(
            "SELECT count(*), sum(quantity), sum(quantity * unit_price) FROM shop.order_items"
        ).fetchone()
        pg_paid = pg.execute(
            "SELECT coalesce(sum(amount), 0) FROM shop.payments WHERE kind = 'capture'"
        ).fetchone()[0]
    with _warehouse(settings) as con:
        mart_orders = con.execute(
            "SELECT status, count(*), sum(total_amount) FROM marts.fct_orders GROUP BY 1 ORDER BY 1"
        ).fetchall()
        mart_items = con.execute(
            "SELECT count(*), sum(quantity), sum(line_amount) FROM marts.fct_order_items"
        ).fetchone()
        mart_paid = con.execute("SELECT sum(captured_amount) FROM marts.fct_orders").fetchone()[0]
    assert len(pg_orders) >= 3  # placed, paid, shipped at least: the workload really ran
    assert [(s, n, Decimal(v)) for s, n, v in mart_orders] == pg_orders
    assert (mart_items[0], mart_items[1], Decimal(mart_items[2])) == pg_items
    assert Decimal(mart_paid) == pg_paid


@pytest.mark.parametrize(
    ("dim", "key", "table", "update"),
    [
        ("dim_customers", "customer_id", "customers", "change_email"),
        ("dim_products", "product_id", "products", "change_price"),
    ],
)
def test_scd2_dimensions_one_current_row_per_key_and_no_overlap(
    gold, dim, key, table, update
) -> None:
    stack, settings, work = gold
    with stack.pg() as pg:
        live = {r[0] for r in pg.execute(f"SELECT {key} FROM shop.{table}").fetchall()}  # noqa: S608
    with _warehouse(settings) as con:
        current = con.execute(
            f"SELECT {key}, count(*) FROM marts.{dim} WHERE valid_to IS NULL GROUP BY 1"  # noqa: S608
        ).fetchall()
        overlaps = con.execute(
            f"SELECT count(*) FROM marts.{dim} a JOIN marts.{dim} b ON a.{key} = b.{key} "  # noqa: S608
            f"AND a.valid_from < b.valid_from "
            f"AND (a.valid_to IS NULL OR a.valid_to > b.valid_from)"
        ).fetchone()[0]
        versions, keys = con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM marts.{dim}"  # noqa: S608
        ).fetchone()
    assert all(n == 1 for _, n in current)
    assert {k for k, _ in current} == live  # deleted keys have no current row
    assert overlaps == 0
    # Exactly one version per key ever seen plus one per committed update transaction (the
    # workload's only UPDATE of this table, one row each): no version lost, none invented.
    assert work.by_action[update] > 0, work.by_action
    # the session's Dagster test changes one customer's email to dagster-…@example.com (one
    # version per such update): not this workload's, counted apart
    outside = 0
    if dim == "dim_customers":
        with _warehouse(settings) as con:
            outside = con.execute(
                "SELECT count(*) FROM marts.dim_customers WHERE email LIKE 'dagster-%@example.com'"
            ).fetchone()[0]
    assert versions == keys + work.by_action[update] + outside


def test_unchanged_toast_description_is_carried_through_price_changes(gold) -> None:
    stack, settings, _ = gold
    with _warehouse(settings) as con:
        toasted = con.execute(
            "SELECT count(*) FROM staging.stg_products_history "
            "WHERE list_contains(_unavailable, 'description')"
        ).fetchone()[0]
        missing = con.execute(
            "SELECT count(*) FROM marts.dim_products WHERE description IS NULL"
        ).fetchone()[0]
        dim = dict(
            con.execute(
                "SELECT product_id, description FROM marts.dim_products WHERE is_current"
            ).fetchall()
        )
    assert toasted > 0, "price updates should have produced unchanged-TOAST placeholders"
    assert missing == 0
    with stack.pg() as pg:
        pg_desc = dict(pg.execute("SELECT product_id, description FROM shop.products").fetchall())
    assert dim == pg_desc


def test_inventory_at_black_friday_instant_mart_equals_as_of(gold) -> None:
    stack, settings, work = gold
    bf = work.black_friday
    mart, silver = inventory_value_check(settings, bf.ask_at)  # raises if they disagree
    assert mart.units > 0 and mart.value > 0
    assert (mart.units, mart.value) == (silver.units, silver.value)
    # and "now" from the mart equals PostgreSQL's own current stock value
    with stack.pg() as pg:
        units, value = pg.execute(
            "SELECT sum(s.quantity), sum(s.quantity * p.price) FROM shop.stock_levels s "
            "JOIN shop.products p USING (product_id)"
        ).fetchone()
        (now,) = pg.execute("SELECT now()").fetchone()
    current = inventory_value_mart(settings.warehouse_path, now)
    assert (current.units, current.value) == (units, value)


def _mart_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every mart table's rows, as text, in a stable order."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "ORDER BY 1"
        ).fetchall()
    ]
    out = {}
    for name in names:
        cols = [r[0] for r in con.execute(f'DESCRIBE marts."{name}"').fetchall()]  # noqa: S608
        text = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
        out[name] = con.execute(f'SELECT {text} FROM marts."{name}" ORDER BY ALL').fetchall()  # noqa: S608
    return out


@pytest.mark.parametrize("where", ["local", "s3"])
def test_the_marts_built_from_iceberg_equal_the_marts_built_from_the_lake(
    gold, tmp_path, where
) -> None:
    """Issue 14: `dbt build --target iceberg` reads silver and bronze from the published Iceberg
    tables (the DuckDB file over them, attached read-only) and gives the same star schema, with
    the warehouse on local disk or on s3proxy (PostgreSQL catalog)."""
    from iceberg_s3 import s3_lake

    from pipelines.iceberg.publish import publish_lake
    from pipelines.shop.demo import dbt_build

    stack, settings, _ = gold
    with contextlib.ExitStack() as scope:
        published = settings
        if where == "s3":
            published = scope.enter_context(s3_lake(stack, "gold_s3"))
            assert published.lake_root == settings.lake_root and published.warehouse_on_s3
        publish_lake(published)
        on_iceberg = published.model_copy(update={"warehouse": tmp_path / "iceberg-marts.duckdb"})
        dbt_build(on_iceberg, target="iceberg", say=lambda _m: None)
    with _warehouse(settings) as lake_con, _warehouse(on_iceberg) as ice_con:
        from_lake, from_iceberg = _mart_rows(lake_con), _mart_rows(ice_con)
    assert {"fct_orders", "fct_order_items", "dim_customers"} <= set(from_lake)
    assert set(from_iceberg) == set(from_lake)
    for name, rows in from_lake.items():
        assert from_iceberg[name] == rows, name
    assert sum(len(r) for r in from_lake.values()) > 100


def test_the_lake_stored_in_iceberg_gives_the_same_marts_and_black_friday_answer(
    gold, tmp_path
) -> None:
    """Issue 14: with CHANGELAKE_LAKE_FORMAT=iceberg the same topics land and compact straight
    into Iceberg (no Parquet lake), dbt builds the star schema from those tables (DBT_TARGET is
    set for this format), every mart equals the Parquet lake's row for row, and the Black
    Friday inventory from the mart equals ``as_of`` over the Iceberg tables."""
    _, settings, work = gold
    on_iceberg = settings.model_copy(
        update={
            "lake_format": "iceberg",
            "lake": tmp_path / "lake",
            "warehouse": tmp_path / "iceberg-warehouse.duckdb",
        }
    )
    materialize_all(on_iceberg, engine="plain", tables=SHOP_TABLES, say=lambda _m: None)
    assert not (tmp_path / "lake" / "bronze").exists()
    assert not (tmp_path / "lake" / "silver").exists()
    with _warehouse(settings) as lake_con, _warehouse(on_iceberg) as ice_con:
        from_lake, from_iceberg = _mart_rows(lake_con), _mart_rows(ice_con)
    assert set(from_iceberg) == set(from_lake)
    for name, rows in from_lake.items():
        assert from_iceberg[name] == rows, name
    events_marts = ("fct_orders", "fct_revenue_by_day_events", "fct_order_lifecycle")
    assert all(from_iceberg[name] for name in events_marts)  # CDC and domain events both
    mart, silver = inventory_value_check(on_iceberg, work.black_friday.ask_at)
    assert mart.units > 0 and (mart.units, mart.value) == (silver.units, silver.value)
