"""The shop's business transactions, each one real multi-statement PostgreSQL transaction.

Every action takes a connection and a seeded ``random.Random`` and either commits one
transaction or does nothing (returns False, e.g. no order is waiting to be paid). Row locks on
``stock_levels`` are always taken in (warehouse_id, product_id) order so concurrent workers do
not deadlock each other; the runner still retries deadlocks and serialization failures.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import psycopg
from psycopg import sql

from pipelines.shop.outbox import EVENT_TYPES, emit_status

Action = Callable[[psycopg.Connection, random.Random, str], bool]
CITIES = [("Berlin", "DE"), ("Paris", "FR"), ("Madrid", "ES"), ("Milan", "IT"), ("Vienna", "AT")]
FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]


def _pick(
    conn: psycopg.Connection,
    rng: random.Random,
    table: str,
    key: str,
    where: str = "TRUE",
    lock: bool = False,
    key_share: bool = False,
) -> int | None:
    """A pseudo-random existing key: the first key at or after a random point (wrapping)."""
    t, k = sql.Identifier("shop", table), sql.Identifier(key)
    (hi,) = conn.execute(sql.SQL("SELECT max({k}) FROM {t}").format(k=k, t=t)).fetchone()
    if hi is None:
        return None
    start = rng.randint(1, hi)
    # FOR KEY SHARE: the row is about to be referenced by a new foreign key, so a concurrent
    # delete must wait (or have happened already, and then another row is picked).
    suffix = sql.SQL(" FOR UPDATE SKIP LOCKED" if lock else " FOR KEY SHARE" if key_share else "")
    for op in (">=", "<"):
        row = conn.execute(
            sql.SQL(
                "SELECT {k} FROM {t} WHERE {k} {op} %s AND ({w}) ORDER BY {k} LIMIT 1{s}"
            ).format(k=k, t=t, op=sql.SQL(op), w=sql.SQL(where), s=suffix),
            (start,),
        ).fetchone()
        if row:
            return row[0]
    return None


def _address(rng: random.Random) -> tuple[str, str, str, str]:
    city, country = rng.choice(CITIES)
    return (
        f"{rng.randint(1, 299)} {rng.choice(LAST)}strasse",
        city,
        f"{rng.randint(10000, 99999)}",
        country,
    )


def sign_up(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    (cid,) = conn.execute(
        "INSERT INTO shop.customers (email, full_name, phone, date_of_birth, marketing_opt_in) "
        "VALUES (%s, %s, %s, make_date(%s, %s, %s), %s) RETURNING customer_id",
        (
            f"{first}.{last}.{tag}@example.com".lower(),
            f"{first} {last}",
            f"+49{rng.randint(10**9, 10**10 - 1)}",
            rng.randint(1950, 2006),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.random() < 0.4,
        ),
    ).fetchone()
    conn.execute(
        "INSERT INTO shop.addresses (customer_id, kind, line1, city, postal_code, country, "
        "is_default) VALUES (%s, 'shipping', %s, %s, %s, %s, true)",
        (cid, *_address(rng)),
    )
    return True


def change_email(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    cid = _pick(conn, rng, "customers", "customer_id", lock=True)
    if cid is None:
        return False
    conn.execute(
        "UPDATE shop.customers SET email = %s, updated_at = now() WHERE customer_id = %s",
        (f"changed.{tag}@example.com", cid),
    )
    return True


def change_address(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    aid = _pick(conn, rng, "addresses", "address_id", lock=True)
    if aid is None:
        return False
    conn.execute(
        "UPDATE shop.addresses SET line1 = %s, city = %s, postal_code = %s, country = %s, "
        "updated_at = now() WHERE address_id = %s",
        (*_address(rng), aid),
    )
    return True


def change_price(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    pid = _pick(conn, rng, "products", "product_id", lock=True)
    if pid is None:
        return False
    factor = Decimal(rng.choice(["0.90", "0.95", "1.05", "1.10"]))
    conn.execute(
        "UPDATE shop.products SET price = round(price * %s, 2), updated_at = now() "
        "WHERE product_id = %s",
        (factor, pid),
    )  # description untouched: TOAST stays
    return True


def _move_stock(
    conn: psycopg.Connection, moves: list[tuple[int, int, int]], reason: str, order_id: int | None
) -> list[tuple[int, int, int]]:
    """Apply (warehouse, product, delta) in key order; return the moves that were possible."""
    done = []
    for wid, pid, delta in sorted(moves):
        ok = conn.execute(
            "UPDATE shop.stock_levels SET quantity = quantity + %s, updated_at = now() "
            "WHERE warehouse_id = %s AND product_id = %s AND quantity + %s >= 0 RETURNING 1",
            (delta, wid, pid, delta),
        ).fetchone()
        if ok:
            conn.execute(
                "INSERT INTO shop.stock_movements (warehouse_id, product_id, quantity_delta, "
                "reason, order_id) VALUES (%s, %s, %s, %s, %s)",
                (wid, pid, delta, reason, order_id),
            )
            done.append((wid, pid, delta))
    return done


def place_order(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    cid = _pick(conn, rng, "customers", "customer_id", key_share=True)
    wid = _pick(conn, rng, "warehouses", "warehouse_id")
    if cid is None or wid is None:
        return False
    pids = {_pick(conn, rng, "products", "product_id", "active") for _ in range(rng.randint(1, 4))}
    wanted = [(wid, p, -rng.randint(1, 3)) for p in sorted(x for x in pids if x is not None)]
    (order_id,) = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('shop.orders', 'order_id'))"
    ).fetchone()
    addr = conn.execute(
        "SELECT address_id FROM shop.addresses WHERE customer_id = %s "
        "ORDER BY is_default DESC, address_id LIMIT 1 FOR KEY SHARE",
        (cid,),
    ).fetchone()
    # Lock and check the stock first (key order), so the order row is written once with its
    # final total: one insert event per order in the CDC stream, not an insert plus an update.
    lines = []
    for w, p, d in sorted(wanted):
        row = conn.execute(
            "SELECT quantity FROM shop.stock_levels WHERE warehouse_id = %s AND "
            "product_id = %s FOR UPDATE",
            (w, p),
        ).fetchone()
        if row and row[0] + d >= 0:
            (price,) = conn.execute(
                "SELECT price FROM shop.products WHERE product_id = %s", (p,)
            ).fetchone()
            lines.append((w, p, d, price))
    if not lines:
        return False
    total = sum((price * -d for _, _, d, price in lines), Decimal("0"))
    conn.execute(
        "INSERT INTO shop.orders (order_id, customer_id, shipping_address_id, warehouse_id, "
        "total_amount) VALUES (%s, %s, %s, %s, %s)",
        (order_id, cid, addr[0] if addr else None, wid, total),
    )
    for n, (_, p, d, price) in enumerate(lines, start=1):
        conn.execute(
            "INSERT INTO shop.order_items (order_id, line_no, product_id, quantity, "
            "unit_price) VALUES (%s, %s, %s, %s, %s)",
            (order_id, n, p, -d, price),
        )
    _move_stock(conn, [(w, p, d) for w, p, d, _ in lines], "sale", order_id)
    emit_status(conn, order_id, "placed")  # the domain event, same transaction (outbox)
    return True


def _advance(conn: psycopg.Connection, rng: random.Random, src: str, dst: str) -> int | None:
    oid = _pick(conn, rng, "orders", "order_id", f"status = '{src}'", lock=True)
    if oid is not None:
        conn.execute(
            "UPDATE shop.orders SET status = %s, updated_at = now() WHERE order_id = %s", (dst, oid)
        )
        if dst in EVENT_TYPES:
            emit_status(conn, oid, dst)  # the domain event, same transaction (outbox)
    return oid


def pay_order(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    oid = _advance(conn, rng, "placed", "paid")
    if oid is not None:
        conn.execute(
            "INSERT INTO shop.payments (order_id, kind, method, amount) SELECT order_id, "
            "'capture', %s, total_amount FROM shop.orders WHERE order_id = %s",
            (rng.choice(["card", "paypal", "bank_transfer", "voucher"]), oid),
        )
    return oid is not None


def ship_order(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    return _advance(conn, rng, "paid", "shipped") is not None


def cancel_order(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    oid = _advance(conn, rng, "placed", "cancelled")
    if oid is None:
        return False
    back = conn.execute(
        "SELECT o.warehouse_id, i.product_id, i.quantity FROM shop.order_items i "
        "JOIN shop.orders o USING (order_id) WHERE order_id = %s",
        (oid,),
    ).fetchall()
    _move_stock(conn, [tuple(r) for r in back], "cancel", oid)
    return True


def refund_order(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    oid = _advance(conn, rng, "shipped", "refunded")
    if oid is not None:
        conn.execute(
            "INSERT INTO shop.payments (order_id, kind, method, amount) SELECT order_id, "
            "'refund', 'card', total_amount FROM shop.orders WHERE order_id = %s",
            (oid,),
        )
    return oid is not None


def receive_stock(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    wid, pid = (
        _pick(conn, rng, "warehouses", "warehouse_id"),
        _pick(conn, rng, "products", "product_id"),
    )
    return bool(
        wid and pid and _move_stock(conn, [(wid, pid, rng.randint(20, 100))], "receipt", None)
    )


def adjust_stock(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    wid, pid = (
        _pick(conn, rng, "warehouses", "warehouse_id"),
        _pick(conn, rng, "products", "product_id"),
    )
    delta = rng.choice([-3, -2, -1, 1, 2])
    return bool(wid and pid and _move_stock(conn, [(wid, pid, delta)], "adjustment", None))


def delete_something(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    """GDPR-style erasure of a customer who never ordered, or removal of an unused address."""
    if rng.random() < 0.5:
        cid = _pick(
            conn,
            rng,
            "customers",
            "customer_id",
            "NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.customer_id = customers.customer_id)",
            lock=True,
        )
        if cid is None:
            return False
        conn.execute("DELETE FROM shop.addresses WHERE customer_id = %s", (cid,))
        conn.execute("DELETE FROM shop.customers WHERE customer_id = %s", (cid,))
        return True
    aid = _pick(
        conn,
        rng,
        "addresses",
        "address_id",
        "NOT is_default AND NOT EXISTS (SELECT 1 FROM "
        "shop.orders o WHERE o.shipping_address_id = addresses.address_id)",
        lock=True,
    )
    if aid is None:
        return False
    conn.execute("DELETE FROM shop.addresses WHERE address_id = %s", (aid,))
    return True


def add_address(conn: psycopg.Connection, rng: random.Random, tag: str) -> bool:
    cid = _pick(conn, rng, "customers", "customer_id", key_share=True)
    if cid is None:
        return False
    conn.execute(
        "INSERT INTO shop.addresses (customer_id, kind, line1, city, postal_code, country) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (cid, rng.choice(["shipping", "billing"]), *_address(rng)),
    )
    return True


# (action, weight in normal traffic, weight during the Black-Friday burst)
MIX: list[tuple[Action, int, int]] = [
    (sign_up, 10, 6),
    (change_email, 4, 1),
    (change_address, 4, 1),
    (add_address, 3, 1),
    (change_price, 5, 2),
    (place_order, 25, 60),
    (pay_order, 18, 20),
    (ship_order, 12, 6),
    (cancel_order, 4, 3),
    (refund_order, 2, 1),
    (receive_stock, 6, 2),
    (adjust_stock, 4, 1),
    (delete_something, 3, 0),
]
