"""The demo's questions, answered from the star schema (DuckDB, read-only) and from silver.

The inventory value at an instant is computed twice, independently: from the marts
(``fct_inventory_history`` x ``dim_products``, built by dbt from bronze CDC history) and from
silver time travel (``as_of`` of stock_levels and products). Both must give the same number;
``inventory_value_check`` raises if they do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from pipelines.config import Settings

INVENTORY_AT_SQL = """
SELECT coalesce(sum(s.quantity * p.price), 0) AS value, coalesce(sum(s.quantity), 0) AS units
FROM marts.fct_inventory_history s
JOIN marts.dim_products p
  ON p.product_id = s.product_id
 AND p.valid_from <= $ts AND (p.valid_to IS NULL OR $ts < p.valid_to)
WHERE s.valid_from <= $ts AND (s.valid_to IS NULL OR $ts < s.valid_to)
"""


class AnswersDisagree(AssertionError):
    """The mart and silver time travel gave different answers to the same question."""


@dataclass(frozen=True)
class InventoryValue:
    """Stock units on hand and their value at list price at one instant."""

    instant: datetime
    units: int
    value: Decimal


def _read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def revenue_by_day(warehouse: Path) -> list[tuple]:
    """(day, orders, revenue) for paid or shipped orders, by the day they were placed."""
    with _read_only(warehouse) as con:
        return con.execute(
            "SELECT d.date_day, count(*) AS orders, sum(o.total_amount) AS revenue "
            "FROM marts.fct_orders o JOIN marts.dim_date d USING (date_key) "
            "WHERE o.is_revenue GROUP BY d.date_day ORDER BY d.date_day"
        ).fetchall()


def top_products(warehouse: Path, limit: int = 5) -> list[tuple]:
    """(product, category, units, revenue) of the best-selling products by revenue."""
    with _read_only(warehouse) as con:
        return con.execute(
            "SELECT p.product_name, p.category_name, sum(i.quantity) AS units, "
            "sum(i.line_amount) AS revenue FROM marts.fct_order_items i "
            "JOIN marts.dim_products p USING (product_sk) WHERE i.is_revenue "
            "GROUP BY ALL ORDER BY revenue DESC, p.product_name LIMIT $limit",
            {"limit": limit},
        ).fetchall()


def inventory_value_mart(warehouse: Path, instant: datetime) -> InventoryValue:
    """Stock value at ``instant`` from the marts (SCD2 stock x SCD2 price)."""
    with _read_only(warehouse) as con:
        value, units = con.execute(INVENTORY_AT_SQL, {"ts": instant}).fetchone()
    return InventoryValue(instant, int(units), Decimal(value))


def inventory_value_silver(settings: Settings, instant: datetime) -> InventoryValue:
    """Stock value at ``instant`` from silver time travel of the two source tables (in the
    lake's format)."""
    from pipelines.lakeformat import as_of

    stock = as_of(settings, "shop.stock_levels", instant)  # noqa: F841 (read by DuckDB below)
    products = as_of(settings, "shop.products", instant)  # noqa: F841
    with duckdb.connect() as con:
        value, units = con.execute(
            "SELECT coalesce(sum(s.quantity * p.price), 0), coalesce(sum(s.quantity), 0) "
            "FROM stock s JOIN products p USING (product_id)"
        ).fetchone()
    return InventoryValue(instant, int(units), Decimal(value))


def inventory_value_check(
    settings: Settings, instant: datetime
) -> tuple[InventoryValue, InventoryValue]:
    """Both answers; raises ``AnswersDisagree`` unless units and value are equal."""
    mart = inventory_value_mart(settings.warehouse_path, instant)
    silver = inventory_value_silver(settings, instant)
    if (mart.units, mart.value) != (silver.units, silver.value):
        raise AnswersDisagree(
            f"inventory at {instant.isoformat()}: mart says {mart.units} units worth "
            f"{mart.value}, silver as_of says {silver.units} units worth {silver.value}"
        )
    return mart, silver
