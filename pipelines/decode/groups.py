"""What every decoder does with its schema groups: build one, salvaging the good messages when
some value is bad, and union a table's groups (schema versions) in offset order.

Change events (``tables``) and domain events (``events``) share these two rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.decode import RawMessage
from pipelines.decode.special import Quarantine

Build = Callable[[list[RawMessage], list[dict]], pa.Table]


def build_or_split(
    build: Build,
    msgs: list[RawMessage],
    payloads: list[dict],
    quarantine: Quarantine,
    errors: tuple[type[Exception], ...],
    reason: str,
) -> pa.Table | None:
    """``build`` the whole group (columnar); if a value is bad, build each message alone to find
    the culprits, quarantine them (``reason: <error>``) and build the rest together."""
    try:
        return build(msgs, payloads)
    except errors:
        pass
    good_m, good_p = [], []
    for msg, payload in zip(msgs, payloads, strict=True):
        try:
            build([msg], [payload])
            good_m.append(msg)
            good_p.append(payload)
        except errors as exc:
            quarantine.add(msg, f"{reason}: {exc}")
    return build(good_m, good_p) if good_m else None


def union_groups(
    parts: list[pa.Table], meta: Sequence[str], *, text_on_clash: Sequence[str] = ()
) -> tuple[pa.Table, list[str]]:
    """The groups as one table (source columns in first-seen order, then ``meta``), ordered by
    Kafka partition and offset, and the columns whose type clashed between groups (empty when
    none). Clashing columns -- and ``text_on_clash`` whenever any clash -- are stored as text."""
    clash: list[str] = []
    try:
        merged = pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        types: dict[str, set] = {}
        for t in parts:
            for f in t.schema:
                types.setdefault(f.name, set()).add(f.type)
        clash = sorted(n for n, ts in types.items() if len(ts) > 1 and n not in text_on_clash)
        parts = [as_text(t, [*clash, *text_on_clash]) for t in parts]
        merged = pa.concat_tables(parts, promote_options="permissive")
    skip = set(meta)
    source = list(dict.fromkeys(n for t in parts for n in t.column_names if n not in skip))
    merged = merged.select([*source, *meta])
    order = pc.sort_indices(merged, [("_partition", "ascending"), ("_offset", "ascending")])
    return merged.take(order), clash


def as_text(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Clashing columns as text: Arrow's own cast where it has one, else JSON of the value."""
    for name in columns:
        if name not in table.column_names:
            continue
        i = table.column_names.index(name)
        col = table.column(i)
        try:
            text = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text = pa.array(
                [
                    None if v is None else orjson.dumps(v, default=str).decode()
                    for v in col.to_pylist()
                ],
                pa.string(),
            )
        table = table.set_column(i, name, text)
    return table
