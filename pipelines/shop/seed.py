"""Initial reference data for the demo shop: categories, warehouses, products, stock.

Seeding is deterministic (one ``random.Random(seed)``) and happens once, when the shop has
no products yet, so a rerun of the workload continues the same shop instead of duplicating it.
Product descriptions are 4-8 kB of high-entropy text so PostgreSQL stores them out of line
(TOAST); the workload never rewrites them, which makes Debezium emit unchanged-TOAST placeholders.
"""

from __future__ import annotations

import random
import string
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

CATEGORIES = {
    "Electronics": ["Phones", "Laptops", "Audio"],
    "Home": ["Kitchen", "Garden"],
    "Fashion": ["Shoes", "Outerwear"],
    "Toys": [],
}
WAREHOUSES = [
    ("BER", "Berlin Hub", "Berlin"),
    ("LYS", "Lyon Depot", "Lyon"),
    ("MAD", "Madrid DC", "Madrid"),
]
_ALPHABET = string.ascii_letters + string.digits + " .,;-"


def description(rng: random.Random) -> str:
    """A 4-8 kB pseudo-random text: nearly incompressible, so it is really TOASTed."""
    return "".join(rng.choices(_ALPHABET, k=rng.randint(4096, 8192)))


def money(rng: random.Random, low: float, high: float) -> Decimal:
    """A random amount with two decimals (Decimal, never float, for NUMERIC columns)."""
    return Decimal(rng.randint(int(low * 100), int(high * 100))) / 100


def seed_shop(conn: psycopg.Connection, rng: random.Random, *, products: int = 60) -> bool:
    """Insert the reference data once; return False if the shop was already seeded."""
    with conn.transaction():
        if conn.execute("SELECT EXISTS (SELECT 1 FROM shop.products)").fetchone()[0]:
            return False
        leaf_ids: list[int] = []
        for top, children in CATEGORIES.items():
            (top_id,) = conn.execute(
                "INSERT INTO shop.categories (name) VALUES (%s) RETURNING category_id", (top,)
            ).fetchone()
            ids = [
                conn.execute(
                    "INSERT INTO shop.categories (name, parent_id) VALUES (%s, %s) "
                    "RETURNING category_id",
                    (child, top_id),
                ).fetchone()[0]
                for child in children
            ]
            leaf_ids.extend(ids or [top_id])
        warehouse_ids = [
            conn.execute(
                "INSERT INTO shop.warehouses (code, name, city) VALUES (%s, %s, %s) "
                "RETURNING warehouse_id",
                w,
            ).fetchone()[0]
            for w in WAREHOUSES
        ]
        for i in range(products):
            price = money(rng, 5, 900)
            (pid,) = conn.execute(
                "INSERT INTO shop.products (sku, name, category_id, price, cost, description, "
                "attributes) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING product_id",
                (
                    f"SKU-{i:05d}",
                    f"Product {i:05d}",
                    rng.choice(leaf_ids),
                    price,
                    (price * Decimal("0.6")).quantize(Decimal("0.01")),
                    description(rng),
                    Jsonb(
                        {
                            "color": rng.choice(["red", "blue", "black"]),
                            "weight_g": rng.randint(50, 5000),
                        }
                    ),
                ),
            ).fetchone()
            for wid in warehouse_ids:
                qty = rng.randint(50, 200)
                conn.execute(
                    "INSERT INTO shop.stock_levels (warehouse_id, product_id, quantity) "
                    "VALUES (%s, %s, %s)",
                    (wid, pid, qty),
                )
                conn.execute(
                    "INSERT INTO shop.stock_movements (warehouse_id, product_id, quantity_delta, "
                    "reason) VALUES (%s, %s, %s, 'receipt')",
                    (wid, pid, qty),
                )
    return True
