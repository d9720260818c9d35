"""Build the bronze Arrow table for one group of change events that share a Debezium schema.

Source columns come from ``after`` (``before`` for deletes; NULL for truncates), each built as
one Arrow array per column. The metadata columns follow docs/design.md. ``_commit_lsn`` is the
first element of ``source.sequence`` (``[lastCommitLsn, lsn]``) -- see pipelines/decode/README.md for why
that is the right ordering key across transactions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import BRONZE_METADATA as METADATA
from pipelines.contract import UTC_US
from pipelines.decode import RawMessage
from pipelines.decode.envelope import EnvelopePlan
from pipelines.decode.groups import union_groups
from pipelines.decode.types import PLACEHOLDER, PLACEHOLDER_B64, SchemaMismatch

_EMPTY: dict = {}
_UNAVAILABLE = (PLACEHOLDER, PLACEHOLDER_B64)


class Event(NamedTuple):
    """A change message and its parsed payload."""

    msg: RawMessage
    payload: dict


def _is_placeholder(v: object) -> bool:
    """Debezium's unchanged-TOAST marker: the text, its bytes (base64), or a 1-list of either."""
    if v.__class__ is str:
        return v in _UNAVAILABLE
    if v.__class__ is list and len(v) == 1:
        return v[0].__class__ is str and v[0] in _UNAVAILABLE
    return False


_PLACEHOLDER_FORMS = (*_UNAVAILABLE, *([p] for p in _UNAVAILABLE))


_UNAVAILABLE_SET = frozenset(_UNAVAILABLE)


def _may_hold_placeholder(values: list) -> bool:
    """C-level scans (equality, as ``_is_placeholder``) before any per-value Python: one hashed
    pass when every value is hashable (then no list, so no one-element-list form either)."""
    try:
        return not _UNAVAILABLE_SET.isdisjoint(values)
    except TypeError:  # lists/dicts among the values
        return any(form in values for form in _PLACEHOLDER_FORMS)


def _extract(rows: list[dict], names: list[str]) -> list[list]:
    """Column-major values of ``names`` from row dicts (a missing field reads as None).

    One comprehension per column: on CPython 3.11 that beats transposing with itemgetter/zip."""
    return [_column(rows, n) for n in names]


def _column(rows: list[dict], name: str) -> list:
    try:
        return [r[name] for r in rows]
    except KeyError:  # a row without the field: slower, tolerant path
        return [r.get(name) for r in rows]


def _row_columns(plan: EnvelopePlan, rows: list[dict], unavailable: list[list[str]] | None):
    """One Arrow array per source column; placeholders become NULL (recorded if asked)."""
    arrays = []
    columns = _extract(rows, [c.name for c in plan.columns])
    for col, values in zip(plan.columns, columns, strict=True):
        if col.toastable and _may_hold_placeholder(values):
            hits = [i for i, v in enumerate(values) if _is_placeholder(v)]
            for i in hits:
                values[i] = None
                if unavailable is not None:
                    unavailable[i].append(col.name)
        try:
            arrays.append(col.convert(values))
        except SchemaMismatch as exc:
            raise SchemaMismatch(f"column {col.name!r}: {exc}") from None
    return arrays


def _int_or_none(v: object) -> int | None:
    return int(v) if v is not None else None


def _repeat(value: int, n: int, typ: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.int64()), n).cast(typ)


def _unavailable_array(unavailable: list[list[str]]) -> pa.Array:
    if any(unavailable):
        return pa.array(unavailable, pa.list_(pa.string()))
    offsets = pa.repeat(pa.scalar(0, pa.int32()), len(unavailable) + 1)
    return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))


_SOURCE_FIELDS = ("ts_us", "lsn", "sequence", "txId", "snapshot")


def _source_columns(sources: list[dict]) -> list[list]:
    cols = _extract(sources, list(_SOURCE_FIELDS))
    ts_us = cols[0]
    if None in ts_us:  # an older Debezium without ts_us
        ts_us = [s.get("ts_us") if s.get("ts_us") is not None else _ms_to_us(s.get("ts_ms"))
                 for s in sources]  # fmt: skip
    snapshot = cols[4]
    if not all(v is None or v.__class__ is str for v in snapshot):  # str/None are kept as is
        snapshot = [_snapshot(v) for v in snapshot]
    return [ts_us, cols[1], _commit_lsns(cols[2]), cols[3], snapshot]


def build_group(
    plan: EnvelopePlan, msgs: list[RawMessage], payloads: list[dict], ingested_at: datetime
) -> pa.Table:
    """The bronze rows of ``msgs`` and their parsed ``payloads`` (one schema, one table)."""
    n = len(msgs)
    ops = [p["op"] for p in payloads]
    rows = [(p.get("before") if p["op"] == "d" else p.get("after")) or _EMPTY for p in payloads]
    unavailable: list[list[str]] = [[] for _ in range(n)]
    source_arrays = _row_columns(plan, rows, unavailable)

    befores = [p.get("before") for p in payloads]
    present = [i for i, b in enumerate(befores) if b is not None]
    if plan.columns and present:
        # only the rows that have a before-image are extracted; the rest are NULL structs
        sub = befores if len(present) == n else [befores[i] for i in present]
        before = pa.StructArray.from_arrays(
            _row_columns(plan, [b or _EMPTY for b in sub], None),
            fields=list(plan.row_type),
            mask=pa.array([b is None for b in sub]),
        )
        if len(present) != n:
            where = [None] * n
            for k, i in enumerate(present):
                where[i] = k
            before = before.take(pa.array(where, pa.int64()))
    else:  # inserts and snapshot reads: no before-image at all
        before = pa.nulls(n, plan.row_type)

    ts_us, lsn, commit_lsn, tx_id, snapshot = _source_columns([p["source"] for p in payloads])
    txs = [p.get("transaction") or _EMPTY for p in payloads]
    meta = [
        pa.array(ops, pa.string()),
        pa.array(ts_us, pa.int64()).cast(UTC_US),
        pa.array(lsn, pa.int64()),
        commit_lsn,
        pa.array(tx_id, pa.int64()),
        pa.array([t.get("total_order") for t in txs], pa.int64()),
        pa.array(snapshot, pa.string()),
        pa.array([m.topic for m in msgs], pa.string()),
        pa.array([m.partition for m in msgs], pa.int32()),
        pa.array([m.offset for m in msgs], pa.int64()),
        pa.array([m.timestamp_ms for m in msgs], pa.int64()).cast(pa.timestamp("ms", "UTC")),
        _repeat(_epoch_us(ingested_at), n, UTC_US),
        _unavailable_array(unavailable),
    ]
    source_arrays = _null_truncates(source_arrays, ops)
    names = [c.name for c in plan.columns] + METADATA.names + ["_before"]
    return pa.Table.from_arrays(source_arrays + meta + [before], names=names)


def _epoch_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("ingested_at must be timezone-aware")
    return (dt - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms_to_us(v: object) -> int | None:
    return int(v) * 1000 if v is not None else None


def _snapshot(v: object) -> str | None:
    if v is None:
        return None
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


#: Debezium's exact ``["<digits>",`` form; at most 18 digits so the int64 cast cannot overflow
#: (anything else takes ``_commit_lsn``, which decides exactly as before).
_SEQUENCE_HEAD = r'^\["(?P<lsn>[0-9]{1,18})"'


def _commit_lsns(sequences: list) -> pa.Array:
    """``_commit_lsn`` of every ``source.sequence``, vectorised for Debezium's usual forms."""
    try:
        text = pa.array(sequences, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = None
    if text is not None:
        found = pc.extract_regex(text, _SEQUENCE_HEAD)
        matched = pc.is_valid(found)
        no_lsn = pc.or_kleene(pc.is_null(text), pc.starts_with(text, "[null,"))
        if pc.all(pc.or_kleene(matched, no_lsn)).as_py():
            digits = pc.if_else(matched, pc.struct_field(found, [0]), pa.scalar(None, pa.string()))
            return pc.cast(digits, pa.int64())
    return pa.array([_commit_lsn(q) for q in sequences], pa.int64())


def _commit_lsn(sequence: object) -> int | None:
    """``source.sequence`` is a JSON text ``["<lastCommitLsn>", "<lsn>"]``; take the first.

    Fast path for the exact form Debezium writes (``["123","456"]`` / ``[null,"456"]``)."""
    if sequence is None:
        return None
    if sequence.__class__ is str and sequence.startswith('["'):
        end = sequence.find('"', 2)
        if end > 2 and sequence[2:end].isdigit():
            return int(sequence[2:end])
    elif sequence.__class__ is str and sequence.startswith("[null,"):
        return None
    try:
        seq = orjson.loads(sequence) if isinstance(sequence, str) else sequence
        return int(seq[0]) if seq and seq[0] is not None else None
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError) as exc:
        raise SchemaMismatch(f"bad source.sequence {sequence!r}") from exc


def _null_truncates(arrays: list[pa.Array], ops: list[str]) -> list[pa.Array]:
    """A truncate event has no row values: make sure every source column is NULL there."""
    if "t" not in ops:
        return arrays
    is_t = pa.array([o == "t" for o in ops])
    return [pc.if_else(is_t, pa.nulls(len(a), a.type), a) for a in arrays]


def merge_groups(parts: list[pa.Table]) -> tuple[pa.Table, list[str]]:
    """Union the schema groups of one table; incompatible type changes fall back to text."""
    if len(parts) == 1:
        return parts[0], []
    merged, clash = union_groups(parts, [*METADATA.names, "_before"], text_on_clash=["_before"])
    notes = (
        [f"incompatible type change in column(s) {clash}: stored as text (incl. _before)"]
        if clash
        else []
    )
    return merged, notes
