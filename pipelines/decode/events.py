"""Domain events (Debezium's Outbox Event Router) -> typed Arrow, one bronze table per aggregate.

An event message, as the connector chain of ``connectors/postgres-connector.json`` writes it
(JsonConverter, schemas enabled), is a struct of the expanded JSON ``payload`` (its Connect
schema inferred by the router from the JSON document), the outbox row's ``event_id``,
``event_type``, ``aggregate_type``, ``aggregate_id`` and ``schema_version`` (envelope
placement), and the change event's ``source`` block (commit time, LSN, transaction id; copied
into a header before the router ran and back into the value after it).

Events are recognised by that schema, not by their topic (as change events are routed by
``source``, never by the topic name), and land in bronze ``_events/<aggregate_type>``: the
payload's top-level fields as columns, typed by ``pipelines.decode.types`` from the inferred
schema (so an event version with a new field is a new schema group whose column is added,
like a column added to a table), then ``EVENT_METADATA``. Anything else on the way is
quarantined with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import orjson
import pyarrow as pa

from pipelines.claimcheck import REFERENCE
from pipelines.decode import RawMessage
from pipelines.decode.envelope import BadMessage
from pipelines.decode.groups import build_or_split, union_groups
from pipelines.decode.special import KAFKA_TS, UTC_US, Quarantine
from pipelines.decode.tables import _epoch_us, _extract, _repeat, _source_columns
from pipelines.decode.types import Column, SchemaMismatch, column_for
from pipelines.naming import QualifiedName

EVENTS_SCHEMA = "_events"  # bronze/_events/<aggregate_type>: one table per aggregate type
ENVELOPE_FIELDS = ("event_id", "event_type", "aggregate_type", "aggregate_id", "schema_version")
EVENT_METADATA = pa.schema(
    [
        ("_event_id", pa.string()),
        ("_event_type", pa.string()),
        ("_aggregate_type", pa.string()),
        ("_aggregate_id", pa.string()),
        ("_schema_version", pa.int32()),
        ("_source_ts", UTC_US),  # the source transaction's commit time (source.ts_us)
        ("_lsn", pa.int64()),  # source.lsn: the outbox insert's LSN
        ("_commit_lsn", pa.int64()),  # from source.sequence, as for change events
        ("_tx_id", pa.int64()),
        ("_topic", pa.string()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
        ("_kafka_ts", KAFKA_TS),
        ("_ingested_at", UTC_US),
    ]
)
_ERRORS = (SchemaMismatch, pa.ArrowException, ValueError, TypeError, OverflowError, KeyError)


def event_table(aggregate_type: str) -> QualifiedName:
    """The bronze table of ``aggregate_type``'s events (validated like any outside name)."""
    return QualifiedName(EVENTS_SCHEMA, aggregate_type)


@dataclass(frozen=True)
class EventPlan:
    """The payload columns of one event schema."""

    columns: tuple[Column, ...]
    warnings: tuple[str, ...]
    claimed: bool = False  # the payload is a claim reference (pipelines/decode/claims.py)


@lru_cache(maxsize=256)
def event_plan(schema_bytes: bytes) -> EventPlan | None:
    """The plan of an event value schema; None when the schema is not an event's."""
    try:
        schema = orjson.loads(schema_bytes)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(schema, dict) or schema.get("type") != "struct":
        return None
    fields = {f.get("field"): f for f in schema.get("fields", []) if isinstance(f, dict)}
    if "op" in fields or "payload" not in fields or not set(ENVELOPE_FIELDS) <= set(fields):
        return None
    payload = fields["payload"]
    if payload.get("type") != "struct":
        raise BadMessage(
            f"event payload is not a JSON object (Connect type {payload.get('type')!r})"
        )
    try:
        cols = tuple(column_for(f, f["field"]) for f in payload.get("fields", []))
    except (SchemaMismatch, KeyError, TypeError) as exc:
        raise BadMessage(f"unusable event payload schema: {exc}") from None
    clash = [c.name for c in cols if c.name in EVENT_METADATA.names]
    if clash:
        raise BadMessage(f"event payload field(s) {clash} clash with bronze metadata columns")
    claimed = [c.name for c in cols] == [REFERENCE]
    return EventPlan(cols, tuple(w for c in cols for w in c.warnings), claimed)


def check_event(payload: object) -> QualifiedName:
    """Cheap per-message checks of an event; returns its bronze table."""
    if not isinstance(payload, dict) or not isinstance(payload.get("payload"), dict):
        raise BadMessage("event without a payload object")
    for name in ("event_id", "event_type", "aggregate_type", "aggregate_id"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise BadMessage(f"event without {name}")
    if payload.get("schema_version").__class__ is not int:
        raise BadMessage("event without an integer schema_version")
    source = payload.get("source")
    if not isinstance(source, dict) or source.get("lsn") is None:
        raise BadMessage("event without its source block (commit time and LSN)")
    return event_table(payload["aggregate_type"])


def build_events(
    plan: EventPlan, msgs: list[RawMessage], payloads: list[dict], ingested_at: datetime
) -> pa.Table:
    """The bronze rows of one group of events sharing a schema."""
    n = len(msgs)
    rows = [p["payload"] for p in payloads]
    values = _extract(rows, [c.name for c in plan.columns])
    arrays = [c.convert(v) for c, v in zip(plan.columns, values, strict=True)]
    env = _extract(payloads, list(ENVELOPE_FIELDS))
    ts_us, lsn, commit_lsn, tx_id, _ = _source_columns([p["source"] for p in payloads])
    meta = [
        *(pa.array(v, pa.string()) for v in env[:4]),
        pa.array(env[4], pa.int32()),
        pa.array(ts_us, pa.int64()).cast(UTC_US),
        pa.array(lsn, pa.int64()),
        commit_lsn,
        pa.array(tx_id, pa.int64()),
        pa.array([m.topic for m in msgs], pa.string()),
        pa.array([m.partition for m in msgs], pa.int32()),
        pa.array([m.offset for m in msgs], pa.int64()),
        pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(KAFKA_TS),
        _repeat(_epoch_us(ingested_at), n, UTC_US),
    ]
    names = [c.name for c in plan.columns] + EVENT_METADATA.names
    return pa.Table.from_arrays(arrays + meta, names=names)


def merge_events(parts: list[pa.Table]) -> tuple[pa.Table, list[str]]:
    """Union one aggregate's schema groups (event versions) in offset order; a field whose
    type changed between versions is stored as text, with a note."""
    merged, clash = union_groups(parts, EVENT_METADATA.names)
    notes = [f"incompatible type change in event field(s) {clash}: stored as text"] if clash else []
    return merged, notes


def event_tables(
    groups: dict[tuple[bytes, QualifiedName], tuple[list[RawMessage], list[dict]]],
    ingested_at: datetime,
    quarantine: Quarantine,
) -> tuple[dict[QualifiedName, pa.Table], list[str]]:
    """Every event group of a batch as one table per aggregate type, plus warnings."""
    per_table: dict[QualifiedName, list[pa.Table]] = {}
    warnings: list[str] = []
    for (schema_bytes, table), (msgs, payloads) in groups.items():
        plan = event_plan(schema_bytes)
        assert plan is not None  # grouped only after event_plan recognised the schema
        warnings.extend(f"{table}: {w}" for w in plan.warnings)
        built = build_or_split(
            lambda m, p, plan=plan: build_events(plan, m, p, ingested_at),
            msgs,
            payloads,
            quarantine,
            _ERRORS,
            "event value contradicts its schema",
        )
        if built is not None:
            per_table.setdefault(table, []).append(built)
    out = {}
    for table, parts in per_table.items():
        merged, notes = merge_events(parts)
        warnings.extend(f"{table}: {n}" for n in notes)
        meta = {"changelake.key": b'["_event_id"]', "changelake.table": str(table)}
        out[table] = merged.replace_schema_metadata(meta)
    return out, warnings
