"""Decode one consumed batch: route messages, group change events by schema, build Arrow tables.

Per message we only parse the payload and do cheap envelope checks; everything else is
columnar per (schema, table) group. A group whose columnar build fails (a value contradicting
its schema) is retried message by message, so only the bad messages go to quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import repeat
from pathlib import Path

import orjson
import pyarrow as pa

from pipelines.decode import DecodedBatch, RawMessage
from pipelines.decode.claims import resolve as resolve_claim
from pipelines.decode.envelope import BadMessage, Splitter, key_names, plan_for
from pipelines.decode.events import check_event, event_plan, event_tables
from pipelines.decode.groups import build_or_split
from pipelines.decode.notifications import notifications_table
from pipelines.decode.special import Quarantine, transactions_table
from pipelines.decode.tables import build_group, merge_groups
from pipelines.decode.types import INFINITY_HITS, SchemaMismatch
from pipelines.naming import InvalidName, QualifiedName

_OPS = frozenset("crudt")


def decode_messages(
    messages: Sequence[RawMessage],
    *,
    ingested_at: datetime,
    topic_prefix: str,
    lake: Path | None = None,
) -> DecodedBatch:
    """See ``pipelines.decode.decode_batch``."""
    heartbeat_topic = f"__debezium-heartbeat.{topic_prefix}"
    tx_topic = f"{topic_prefix}.transaction"
    note_topic = f"{topic_prefix}.notifications"
    quarantine = Quarantine(ingested_at)
    warnings: list[str] = []
    tombstones = heartbeats = 0
    tx_msgs: list[tuple[RawMessage, dict]] = []
    note_msgs: list[tuple[RawMessage, object]] = []
    groups: dict[tuple[bytes, QualifiedName], tuple[list[RawMessage], list[dict]]] = {}
    events: dict[tuple[bytes, QualifiedName], tuple[list[RawMessage], list[dict]]] = {}
    last_key: dict[QualifiedName, bytes | None] = {}
    names: dict[tuple[str, str], QualifiedName] = {}
    splitter = Splitter()

    fast = None
    if all(m.topic != note_topic for m in messages):
        fast = _fast_run(messages, splitter, heartbeat_topic, tx_topic)
    if fast is not None:
        tombstones, heartbeats, tx_msgs, groups, last_key = fast
    else:
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
                if msg.topic == note_topic:
                    note_msgs.append((msg, payload))
                    continue
                if (event := event_plan(schema_bytes)) is not None:  # a domain event (outbox)
                    table = check_event(payload)
                    if event.claimed:  # too large for Kafka: its payload is in the lake
                        schema_bytes = resolve_claim(schema_bytes, payload, lake)
                    group = events.setdefault((schema_bytes, table), ([], []))
                    group[0].append(msg)
                    group[1].append(payload)
                    continue
                plan_for(schema_bytes)  # validates the schema once (cached)
                table = _check_change(payload, names)
            except (BadMessage, InvalidName) as exc:
                quarantine.add(msg, str(exc))
                continue
            group = groups.setdefault((schema_bytes, table), ([], []))
            group[0].append(msg)
            group[1].append(payload)
            last_key[table] = msg.key
    keys = {table: key_names(raw) or () for table, raw in last_key.items()}

    per_table: dict[QualifiedName, list[pa.Table]] = {}
    for (schema_bytes, table), (msgs, payloads) in groups.items():
        plan = plan_for(schema_bytes)
        warnings.extend(f"{table}: {w}" for w in plan.warnings)
        hits: list[str] = []
        token = INFINITY_HITS.set(hits)
        try:
            built = build_or_split(
                lambda m, p, plan=plan: build_group(plan, m, p, ingested_at),
                msgs,
                payloads,
                quarantine,
                (SchemaMismatch, pa.ArrowException, ValueError, TypeError, OverflowError),
                "value contradicts its schema",
            )
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

    if events:
        built, notes = event_tables(events, ingested_at, quarantine)
        tables |= built
        warnings.extend(notes)

    transactions = None
    if tx_msgs:
        transactions, bad = transactions_table(tx_msgs, ingested_at)
        for msg, reason in bad:
            quarantine.add(msg, reason)
    notifications = None
    if note_msgs:
        notifications, bad = notifications_table(note_msgs, ingested_at)
        for msg, reason in bad:
            quarantine.add(msg, reason)
    return DecodedBatch(
        tables=tables,
        transactions=transactions,
        notifications=notifications,
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


_Fast = tuple[
    int,
    int,
    list[tuple[RawMessage, dict]],
    dict[tuple[bytes, QualifiedName], tuple[list[RawMessage], list[dict]]],
    dict[QualifiedName, bytes | None],
]


def _fast_run(
    messages: Sequence[RawMessage], splitter: Splitter, heartbeat_topic: str, tx_topic: str
) -> _Fast | None:
    """The common batch (one topic, one schema, every message well-formed) without a Python
    call per message: payloads are sliced and parsed in one comprehension and the envelope
    checks run column-wise. Anything unusual returns None and the batch takes the general
    per-message path, so results (quarantine reasons included) are exactly the same."""
    if not messages:
        return None
    topic = messages[0].topic
    if any(m.topic != topic for m in messages):
        return None
    if topic == heartbeat_topic:
        return 0, len(messages), [], {}, {}
    live = [m for m in messages if m.value is not None]
    tombstones = len(messages) - len(live)
    if not live:
        return tombstones, 0, [], {}, {}
    payloads = _parse_all(live, splitter)
    if payloads is None:
        return None
    schema_bytes, payloads = payloads
    if set(map(type, payloads)) != {dict}:
        return None
    if topic == tx_topic:
        if not all(p.get("status") in ("BEGIN", "END") for p in payloads):
            return None
        if not all(p.get("id").__class__ is str for p in payloads):
            return None
        return tombstones, 0, list(zip(live, payloads, strict=True)), {}, {}
    table = _check_changes(schema_bytes, payloads)
    if table is None:
        return None
    return tombstones, 0, [], {(schema_bytes, table): (live, payloads)}, {table: live[-1].key}


def _parse_all(live: list[RawMessage], splitter: Splitter) -> tuple[bytes, list] | None:
    """(schema bytes, payloads) when every message carries the first one's schema verbatim."""
    try:
        schema_bytes, _ = splitter(live[0].topic, live[0].value)
    except BadMessage:
        return None
    prefix = splitter.prefix(live[0].topic, schema_bytes)
    if prefix is None:
        return None
    values = [m.value for m in live]
    try:  # map over the unbound methods: no Python frame per message
        if not all(map(bytes.startswith, values, repeat(prefix))):
            return None
        if not all(map(bytes.endswith, values, repeat(b"}"))):
            return None
    except TypeError:  # a value that is not bytes
        return None
    cut = len(prefix)
    try:
        return schema_bytes, [orjson.loads(v[cut:-1]) for v in values]
    except orjson.JSONDecodeError:
        return None


def _check_changes(schema_bytes: bytes, payloads: list[dict]) -> QualifiedName | None:
    """``_check_change`` for a whole group at once; None when any message would fail it or the
    group spans several source tables."""
    try:
        plan_for(schema_bytes)
        ops = [p.get("op") for p in payloads]
        if not _OPS.issuperset(ops):
            return None
        sources = [p.get("source") for p in payloads]
        if set(map(type, sources)) != {dict}:
            return None
        pairs = {(s["schema"], s["table"]) for s in sources}  # KeyError: field missing
        if len(pairs) != 1:
            return None
        if "t" in ops:
            if not all(
                o == "t" or (p.get("before") if o == "d" else p.get("after")).__class__ is dict
                for p, o in zip(payloads, ops, strict=True)
            ):
                return None
        else:
            rows = [
                p.get("before") if o == "d" else p.get("after")
                for p, o in zip(payloads, ops, strict=True)
            ]
            if set(map(type, rows)) != {dict}:
                return None
        return QualifiedName(*pairs.pop())
    except (BadMessage, InvalidName, TypeError, KeyError):
        return None
