"""The one shape of an enriched row, whichever strategy made it, and how two are compared.

An enriched table is the thin event's columns (``THIN_SCHEMA``) plus the order's columns
(``pipelines.shop.api.ORDER_COLUMNS`` but the key) in canonical types: money DECIMAL(12,2),
instants TIMESTAMPTZ (UTC). The API's JSON (strings) and silver's typed rows both go through
``canonical`` so equality means the same order state.
"""

# ruff: noqa: S608  -- SQL from fixed column names only
from __future__ import annotations

import duckdb
import pyarrow as pa

from pipelines.enrich.thin import THIN_SCHEMA
from pipelines.shop.api import ORDER_COLUMNS

STATE_COLUMNS = tuple(c for c in ORDER_COLUMNS if c != "order_id")
_TYPES = {
    "customer_id": "BIGINT",
    "shipping_address_id": "BIGINT",
    "warehouse_id": "BIGINT",
    "status": "VARCHAR",
    "total_amount": "DECIMAL(12,2)",
    "currency": "VARCHAR",
    "placed_at": "TIMESTAMPTZ",
    "updated_at": "TIMESTAMPTZ",
}
EVENT_KEY = ("_partition", "_offset")  # one notification


def canonical_sql(relation: str, prefix: str = "") -> str:
    """The state columns of ``relation`` cast to the canonical types (``prefix``: a table alias
    with its dot)."""
    return ", ".join(f"CAST({prefix}{c} AS {_TYPES[c]}) AS {c}" for c in STATE_COLUMNS)


def join_states(
    events: pa.Table, states: pa.Table, on: tuple[str, ...] = ("order_id",)
) -> pa.Table:
    """Each event with the state fetched for it (``states`` holds ``on`` + state columns, any
    types castable to the canonical ones; absent: NULLs), in event order."""
    con = duckdb.connect()
    try:
        con.register("ev", events)
        con.register("st", states)
        cond = " AND ".join(f"ev.{c} = st.{c}" for c in on)
        ev_cols = ", ".join(f"ev.{c}" for c in THIN_SCHEMA.names)
        return con.sql(
            f"SELECT {ev_cols}, {canonical_sql('st', 'st.')} FROM ev LEFT JOIN st ON {cond} "
            "ORDER BY ev._partition, ev._offset"
        ).to_arrow_table()
    finally:
        con.close()


def disagreements(a: pa.Table, b: pa.Table) -> int:
    """Notifications whose order state differs between two enriched tables (NULL = NULL)."""
    con = duckdb.connect()
    try:
        con.register("a", a)
        con.register("b", b)
        diff = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in STATE_COLUMNS)
        keys = " AND ".join(f"a.{k} = b.{k}" for k in EVENT_KEY)
        (n,) = con.execute(
            f"SELECT count(*) FROM a FULL JOIN b ON {keys} WHERE a._offset IS NULL "
            f"OR b._offset IS NULL OR {diff}"
        ).fetchone()
        return int(n)
    finally:
        con.close()
