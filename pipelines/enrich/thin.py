"""Thin notification events: Debezium's logical-decoding-message records -> an Arrow table.

A record's value (JsonConverter, schemas on) is ``{"schema": ..., "payload": {"op": "m",
"source": {"ts_us": <commit>, "lsn": ..., "txId": ...}, "message": {"prefix": ...,
"content": <base64 of the JSON the shop emitted>}}}``. A transactional message carries its
transaction's commit instant in ``source.ts_us`` (``ts_ms`` truncates it), the same instant as
bronze's ``_source_ts`` of the rows it changed, and its ``txId``, bronze's ``_tx_id``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from pipelines.decode import RawMessage
from pipelines.decode.special import KAFKA_TS, UTC_US, Quarantine
from pipelines.stack.connector_config import NOTIFY_PREFIX

THIN_SCHEMA = pa.schema(
    [
        ("event", pa.string()),
        ("order_id", pa.int64()),
        ("event_ts", KAFKA_TS),  # the "ts" the shop wrote (inside the transaction)
        ("commit_ts", UTC_US),  # the transaction's commit instant (Debezium source.ts_us)
        ("lsn", pa.int64()),
        ("tx_id", pa.int64()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
    ]
)


def _one(msg: RawMessage) -> tuple:
    if msg.value is None:
        raise ValueError("no value (tombstone)")
    doc = orjson.loads(msg.value)
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict) or payload.get("op") != "m":
        raise ValueError("not a logical decoding message (op != 'm')")
    message, source = payload["message"], payload["source"]
    if message.get("prefix") != NOTIFY_PREFIX:
        raise ValueError(f"prefix {message.get('prefix')!r} is not {NOTIFY_PREFIX!r}")
    body = orjson.loads(base64.b64decode(message["content"], validate=True))
    event, order_id, ts = body["event"], body["orderId"], body["ts"]
    if not isinstance(event, str) or type(order_id) is not int or type(ts) is not int:
        raise ValueError("event must be a string, orderId and ts integers")
    tx = source.get("txId")
    return (
        event,
        order_id,
        ts,
        int(source["ts_us"]) if "ts_us" in source else int(source["ts_ms"]) * 1000,
        int(source["lsn"]),
        None if tx is None else int(tx),
        msg.partition,
        msg.offset,
    )


def parse(msgs: list[RawMessage], quarantine: Quarantine | None = None) -> pa.Table:
    """The well-formed notifications of ``msgs``; each malformed one goes to ``quarantine``
    (raw bytes, coordinates, reason), never silently dropped."""
    rows, sink = [], quarantine if quarantine is not None else Quarantine(datetime.now(UTC))
    for msg in msgs:
        try:
            rows.append(_one(msg))
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            sink.add(msg, f"malformed notification: {exc!r}")
    if quarantine is None and len(sink):
        raise ValueError(f"{len(sink)} malformed notification(s); pass a Quarantine to keep them")
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in THIN_SCHEMA]
    return pa.Table.from_arrays(
        [
            pa.array(c, pa.int64() if pa.types.is_timestamp(f.type) else f.type)
            for c, f in zip(cols, THIN_SCHEMA, strict=True)
        ],
        names=THIN_SCHEMA.names,
    ).cast(THIN_SCHEMA)
