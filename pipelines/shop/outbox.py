"""The shop's domain events, written by the transactional outbox pattern.

Each order state change (placed, paid, shipped, cancelled, refunded) calls ``emit`` inside its own
transaction: one ``shop.outbox`` row carrying the whole order with its items (event-carried
state transfer) is inserted and deleted again at once. The insert reaches the WAL, so Debezium
publishes it (its Outbox Event Router, see ``pipelines/stack/connector_config.py``); the table
never grows, and the delete never reaches the event topic.

Payload contract (``schema_version`` 1): ``order_id``, ``customer_id``, ``warehouse_id``,
``status``, ``currency``, ``total_amount`` (exact decimal text), ``placed_at`` and
``updated_at`` (ISO 8601 UTC text), ``items``: a list of ``line_no``, ``product_id``,
``quantity``, ``unit_price`` (decimal text); ``shipping_address_id`` when the order has one.
Version 2 adds ``item_count``. Amounts travel as text because a JSON number would reach
the lake as a double.

An order too large for one Kafka message (several thousand items under a low
``CHANGELAKE_MAX_MESSAGE_BYTES``) is published by claim check: its payload is stored in the
lake and the event carries the reference; the lander lands the full payload.
"""

from __future__ import annotations

import uuid
from functools import cache

import orjson
import psycopg
import pyarrow as pa

from pipelines import claimcheck
from pipelines.claimcheck import Policy
from pipelines.config import get_settings
from pipelines.decode.events import EVENT_METADATA
from pipelines.naming import QualifiedName

OUTBOX = QualifiedName("shop", "outbox")
AGGREGATE = "order"
SCHEMA_VERSION = 1  # what the shop emits; 2 is accepted (adds item_count)
EVENT_TYPES = {
    "placed": "OrderPlaced",
    "paid": "OrderPaid",
    "shipped": "OrderShipped",
    "cancelled": "OrderCancelled",
    "refunded": "OrderRefunded",
}

# the event payload: the order as of now with its items (ISO UTC instants, decimals as text);
# version 2 adds item_count. Constant SQL, every value a parameter.
_PAYLOAD = """
SELECT jsonb_strip_nulls(jsonb_build_object(
    'order_id', o.order_id, 'customer_id', o.customer_id, 'warehouse_id', o.warehouse_id,
    'shipping_address_id', o.shipping_address_id, 'status', o.status::text,
    'currency', o.currency, 'total_amount', o.total_amount::text,
    'placed_at', to_char(o.placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'items', coalesce(items.lines, '[]'::jsonb)))
  || CASE WHEN %(version)s >= 2 THEN jsonb_build_object('item_count', coalesce(items.n, 0))
          ELSE '{}'::jsonb END AS payload
FROM shop.orders o
LEFT JOIN LATERAL (
  SELECT count(*) AS n, jsonb_agg(jsonb_build_object(
           'line_no', i.line_no, 'product_id', i.product_id, 'quantity', i.quantity,
           'unit_price', i.unit_price::text) ORDER BY i.line_no) AS lines
  FROM shop.order_items i WHERE i.order_id = o.order_id) items ON true
WHERE o.order_id = %(order_id)s
"""
_COLUMNS = "INSERT INTO shop.outbox (id, aggregatetype, aggregateid, type, schema_version, payload)"
# the common case in one statement: inline when the payload's JSON text fits, else no row
_INSERT_INLINE = f"""
WITH ev AS ({_PAYLOAD})
{_COLUMNS}
SELECT %(id)s, %(aggregate)s, %(order_id)s::text, %(type)s, %(version)s, ev.payload FROM ev
WHERE octet_length(ev.payload::text) <= %(inline_max)s
RETURNING id
"""  # noqa: S608 - composed of constants; every value is a parameter
_PAYLOAD_TEXT = f"SELECT ev.payload::text FROM ({_PAYLOAD}) ev"  # noqa: S608 - constants
_INSERT_REFERENCE = f"""
{_COLUMNS}
VALUES (%(id)s, %(aggregate)s, %(order_id)s::text, %(type)s, %(version)s, %(reference)s::jsonb)
"""


_ITEM = pa.struct(
    [
        ("line_no", pa.int64()),
        ("product_id", pa.int64()),
        ("quantity", pa.int64()),
        ("unit_price", pa.string()),
    ]
)
# what a reader of the order events relies on (dbt's bronze_order_events), every version's
# fields: a field of a later version is NULL in earlier events
ORDER_EVENT_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("warehouse_id", pa.int64()),
        ("shipping_address_id", pa.int64()),
        ("status", pa.string()),
        ("currency", pa.string()),
        ("total_amount", pa.string()),
        ("placed_at", pa.string()),
        ("updated_at", pa.string()),
        ("items", pa.list_(_ITEM)),
        ("item_count", pa.int64()),  # version 2
        *EVENT_METADATA,
    ]
)


def emit(
    conn: psycopg.Connection,
    order_id: int,
    event_type: str,
    *,
    version: int = SCHEMA_VERSION,
    claims: Policy | None = None,
) -> str:
    """Publish ``event_type`` for the order's state as of now, in the caller's transaction:
    insert the outbox row, then delete it. Returns the event id (a uuid).

    A payload longer than ``claims.inline_max`` (default: this process' settings) is stored
    in the lake first and the row carries the claim reference (``pipelines/claimcheck.py``)."""
    if version not in (1, 2):
        raise ValueError(f"unknown order event schema version {version}")
    policy = claims or _policy()
    event_id = uuid.uuid4()
    params = {
        "id": event_id,
        "aggregate": AGGREGATE,
        "type": event_type,
        "version": version,
        "order_id": order_id,
        "inline_max": policy.inline_max,
    }
    if conn.execute(_INSERT_INLINE, params).fetchone() is None:
        row = conn.execute(_PAYLOAD_TEXT, params).fetchone()
        if row is None:
            raise LookupError(f"order {order_id} does not exist")
        reference = claimcheck.store(policy.lake, AGGREGATE, str(event_id), row[0].encode())
        conn.execute(_INSERT_REFERENCE, {**params, "reference": orjson.dumps(reference).decode()})
    conn.execute("DELETE FROM shop.outbox WHERE id = %s", (event_id,))
    return str(event_id)


@cache
def _policy() -> Policy:
    """The claim policy of this process' settings (read once)."""
    return Policy.of(get_settings())


def emit_status(conn: psycopg.Connection, order_id: int, status: str) -> str:
    """``emit`` the event of the state the order just entered (placed, paid, ...)."""
    return emit(conn, order_id, EVENT_TYPES[status])
