"""Create the demo shop schema in PostgreSQL, idempotently, as the application role.

The DDL lives in ``schema.sql`` beside this module so the integration tests can hand the very
same text to ``stack.capture``; running it twice is harmless (``IF NOT EXISTS`` throughout).
"""

from __future__ import annotations

from importlib.resources import files

import psycopg

from pipelines.config import Settings
from pipelines.naming import QualifiedName

SHOP_DDL_FILES = ("schema.sql", "notify.sql")  # in this order
SHOP_TABLES: tuple[QualifiedName, ...] = tuple(
    QualifiedName("shop", t)
    for t in (
        "customers",
        "addresses",
        "categories",
        "products",
        "orders",
        "order_items",
        "payments",
        "warehouses",
        "stock_levels",
        "stock_movements",
    )
)


def shop_ddl() -> str:
    """The full, idempotent DDL of the shop schema (one string, several statements), with the
    trigger emitting thin notification events (``notify.sql``)."""
    shop = files("pipelines.shop")
    return "\n".join(shop.joinpath(f).read_text(encoding="utf-8") for f in SHOP_DDL_FILES)


def create_shop(settings: Settings) -> list[QualifiedName]:
    """Run the shop migration in one transaction; return the tables that now exist.

    One transaction so a failed migration leaves nothing half-made; the app role owns the
    tables, which is what the workload and Debezium's publication expect.
    """
    with psycopg.connect(settings.pg_dsn(), autocommit=False) as conn:
        conn.execute(shop_ddl())  # no parameters: simple protocol runs every statement
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'shop' AND table_type = 'BASE TABLE'"
        ).fetchall()
        conn.commit()
    present = {r[0] for r in rows}
    missing = [t for t in SHOP_TABLES if t.table not in present]
    if missing:
        raise RuntimeError(f"shop migration ran but tables are missing: {missing}")
    return list(SHOP_TABLES)
