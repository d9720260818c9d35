"""The ``lake`` strategy: no callback; each order's state as of its event's commit instant.

Every version of ``shop.orders`` comes from silver's own rule (``rules.events_sql`` with the
transaction-safe cut, ``rules.history_sql`` resolving placeholders) over bronze; each event
takes the newest version committed at or before its commit instant, ordered as ``as_of``
orders them (commit LSN, then change LSN), so the row equals ``as_of(commit_ts)`` for that
order. ``truth`` is the independent reference: the version the event's OWN transaction wrote.
Both need bronze to have landed the events' transactions first; an event that is not landed
yet comes back with NULL state (counted by the caller), never with an older state.
"""

# ruff: noqa: S608  -- SQL from fixed names and silver's own fragments
from __future__ import annotations

import pyarrow as pa

from pipelines import lakeformat
from pipelines.config import Settings
from pipelines.enrich.rows import STATE_COLUMNS, canonical_sql
from pipelines.enrich.thin import THIN_SCHEMA
from pipelines.naming import QualifiedName
from pipelines.silver import rules

ORDERS = QualifiedName("shop", "orders")


def _pick(settings: Settings, events: pa.Table, match: str, order: str) -> pa.Table:
    con = lakeformat.connect(settings)
    try:
        con.register("ev", events)
        con.execute(f"CREATE TEMP TABLE v AS {lakeformat.versions_sql(con, settings, ORDERS)}")
        ev_cols = ", ".join(f"ev.{c}" for c in THIN_SCHEMA.names)
        state = ", ".join(
            f"CASE WHEN p._op = 'd' THEN NULL ELSE p.{c} END AS {c}" for c in STATE_COLUMNS
        )
        return con.sql(
            f"""WITH picked AS (
                SELECT ev._partition AS _p, ev._offset AS _o, v.* FROM ev JOIN v
                ON v.order_id = ev.order_id AND {match}
                QUALIFY row_number() OVER (PARTITION BY ev._partition, ev._offset
                                           ORDER BY {order}) = 1),
            st AS (SELECT _p, _o, {state} FROM picked p)
            SELECT {ev_cols}, {canonical_sql("st", "st.")} FROM ev
            LEFT JOIN st ON st._p = ev._partition AND st._o = ev._offset
            ORDER BY ev._partition, ev._offset"""
        ).to_arrow_table()
    finally:
        con.close()


def lake_rows(settings: Settings, events: pa.Table) -> pa.Table:
    """Each event with its order as committed at the event's commit instant."""
    return _pick(
        settings,
        events,
        "v._source_ts <= ev.commit_ts",
        f"coalesce(v._commit_lsn, v._lsn) DESC, {rules.ORDER_LSN.replace('_lsn', 'v._lsn')} DESC",
    )


def truth(settings: Settings, events: pa.Table) -> pa.Table:
    """Each event with the order version its own transaction wrote (the state it refers to)."""
    return _pick(
        settings,
        events,
        "TRY_CAST(split_part(CAST(v._tx_id AS VARCHAR), ':', 1) AS BIGINT) = ev.tx_id",
        "v._lsn DESC",
    )
