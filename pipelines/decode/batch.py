"""Decode one consumed batch: route messages, group change events by schema, build Arrow tables.

Per message we only parse the payload and do cheap envelope checks; everything else is
columnar per (schema, table) group. A group whose columnar build fails (a value contradicting
its schema) is retried message by message, so only the bad messages go to quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
import pyarrow as pa

from pipelines.decode import DecodedBatch, RawMessage
from pipelines.decode.envelope import BadMessage, EnvelopePlan, Splitter, key_names, plan_for
from pipelines.decode.special import Quarantine, transactions_table
from pipelines.decode.tables import Event, build_group, merge_groups
from pipelines.decode.types import INFINITY_HITS, SchemaMismatch
from pipelines.naming import InvalidName, QualifiedName

_OPS = frozenset("crudt")


def decode_messages(
    messages: Sequence[RawMessage], *, ingested_at: datetime, topic_prefix: str
) -> DecodedBatch:
    """See ``pipelines.decode.decode_batch``."""
    heartbeat_topic = f"__debezium-heartbeat.{topic_prefix}"
    tx_topic = f"{topic_prefix}.transaction"
    quarantine = Quarantine(ingested_at)
    warnings: list[str] = []
    tombstones = heartbeats = 0
    tx_msgs: list[tuple[RawMessage, dict]] = []
    groups: dict[tuple[bytes, QualifiedName], list[Event]] = {}
    last_key: dict[QualifiedName, bytes | None] = {}
    names: dict[tuple[str, str], QualifiedName] = {}
    splitter = Splitter()

    for msg in messages:
        if msg.topic == heartbeat_topic:
            heartbeats += 1
            continue
        if msg.value is None:
            tombstones += 1
            continue
        try:
            schema_bytes, payload = splitter(msg.topic, msg.value)
            if msg.topic == tx_topic:
                tx_msgs.append((msg, _check_tx(payload)))
                continue
            plan_for(schema_bytes)  # validates the schema once (cached)
            table = _check_change(payload, names)
        except (BadMessage, InvalidName) as exc:
            quarantine.add(msg, str(exc))
            continue
        groups.setdefault((schema_bytes, table), []).append(Event(msg, payload))
        last_key[table] = msg.key
    keys = {table: key_names(raw) or () for table, raw in last_key.items()}

    per_table: dict[QualifiedName, list[pa.Table]] = {}
    for (schema_bytes, table), events in groups.items():
        plan = plan_for(schema_bytes)
        warnings.extend(f"{table}: {w}" for w in plan.warnings)
        hits: list[str] = []
        token = INFINITY_HITS.set(hits)
        try:
            built = _build_or_split(plan, events, ingested_at, quarantine)
        finally:
            INFINITY_HITS.reset(token)
        warnings.extend(
            f"{table}: column {c!r}: +/-infinity mapped to DuckDB's infinity sentinels"
            for c in dict.fromkeys(hits)
        )
        if built is not None:
            per_table.setdefault(table, []).append(built)

    tables = {}
    for table, parts in per_table.items():
        merged, notes = merge_groups(parts)
        warnings.extend(f"{table}: {n}" for n in notes)
        meta = {
            "changelake.key": orjson.dumps(list(keys.get(table, ()))),
            "changelake.table": str(table),
        }
        tables[table] = merged.replace_schema_metadata(meta)

    transactions = None
    if tx_msgs:
        transactions, bad = transactions_table(tx_msgs, ingested_at)
        for msg, reason in bad:
            quarantine.add(msg, reason)
    return DecodedBatch(
        tables=tables,
        transactions=transactions,
        quarantine=quarantine.table(),
        tombstones=tombstones,
        heartbeats=heartbeats,
        warnings=list(dict.fromkeys(warnings)),
    )


def _check_change(payload: object, names: dict[tuple[str, str], QualifiedName]) -> QualifiedName:
    """Cheap per-message envelope checks; returns the source table (never parsed from the topic).

    ``names`` caches validated names for the batch, so names are checked once, not per event."""
    if not isinstance(payload, dict):
        raise BadMessage("payload is not an object")
    op = payload.get("op")
    if op not in _OPS:
        raise BadMessage(f"unknown or missing op {op!r}")
    source = payload.get("source")
    if not isinstance(source, dict) or "schema" not in source or "table" not in source:
        raise BadMessage("missing source.schema/source.table")
    row = payload.get("before") if op == "d" else payload.get("after")
    if op != "t" and not isinstance(row, dict):
        raise BadMessage(f"op {op!r} without its {'before' if op == 'd' else 'after'} image")
    pair = (source["schema"], source["table"])
    table = names.get(pair)
    if table is None:
        table = names[pair] = QualifiedName(*pair)
    return table


def _check_tx(payload: object) -> dict:
    if not isinstance(payload, dict) or payload.get("status") not in ("BEGIN", "END"):
        raise BadMessage("transaction message without status BEGIN/END")
    if not isinstance(payload.get("id"), str):
        raise BadMessage("transaction message without id")
    return payload


def _build_or_split(
    plan: EnvelopePlan, events: list[Event], ingested_at: datetime, quarantine: Quarantine
) -> pa.Table | None:
    """Columnar build of a group; on a bad value, find the culprits one by one and rebuild."""
    try:
        return build_group(plan, events, ingested_at)
    except (SchemaMismatch, pa.ArrowException, ValueError, TypeError, OverflowError):
        pass
    good = []
    for ev in events:
        try:
            build_group(plan, [ev], ingested_at)
            good.append(ev)
        except (SchemaMismatch, pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            quarantine.add(ev.msg, f"value contradicts its schema: {exc}")
    return build_group(plan, good, ingested_at) if good else None
