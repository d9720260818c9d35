"""Judge a table's schema change between two landed files.

Readers union files by name, so added and dropped columns and widened types need nothing.
Anything else (say int -> text) still lands, since losing events is worse, but is reported
so an operator can decide what silver and dbt should do about it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.bronze.reader import files
from pipelines.naming import QualifiedName

log = logging.getLogger(__name__)

_INT_ORDER = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
_UINT_ORDER = [pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]
_FLOAT_ORDER = [pa.float16(), pa.float32(), pa.float64()]


def is_widening(old: pa.DataType, new: pa.DataType) -> bool:
    """True when every value of ``old`` is representable in ``new`` (reads across files)."""
    if old == new:
        return True
    for order in (_INT_ORDER, _UINT_ORDER, _FLOAT_ORDER):
        if old in order and new in order:
            return order.index(new) >= order.index(old)
    if pa.types.is_integer(old) and pa.types.is_decimal(new):
        return True
    if pa.types.is_decimal(old) and pa.types.is_decimal(new):
        return new.scale >= old.scale and (new.precision - new.scale) >= (old.precision - old.scale)
    if pa.types.is_decimal(old) and pa.types.is_floating(new):
        return False
    if pa.types.is_string(old) and pa.types.is_large_string(new):
        return True
    if pa.types.is_timestamp(old) and pa.types.is_timestamp(new):
        return (old.tz is None) == (new.tz is None)
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        return not schema_changes(pa.schema(list(old)), pa.schema(list(new)))
    if pa.types.is_list(old) and pa.types.is_list(new):
        return is_widening(old.value_type, new.value_type)
    return pa.types.is_null(old)


def schema_changes(old: pa.Schema, new: pa.Schema) -> list[str]:
    """Human-readable incompatible changes from ``old`` to ``new`` (empty: compatible)."""
    out = []
    for f in new:
        i = old.get_field_index(f.name)
        if i < 0:
            continue
        before = old.field(i).type
        if not is_widening(before, f.type) and not pa.types.is_null(f.type):
            out.append(f"column {f.name!r} changed type {before} -> {f.type}")
    return out


def added_columns(old: pa.Schema, new: pa.Schema) -> list[str]:
    """Columns in ``new`` that ``old`` lacked (for the landing log)."""
    return [f.name for f in new if old.get_field_index(f.name) < 0]


class SchemaWatch:
    """Remembers each table's last landed schema to report changes between files."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self.last: dict[QualifiedName, pa.Schema] = {}

    def check(self, table: QualifiedName, schema: pa.Schema) -> list[str]:
        old = self.last.get(table)
        if old is None:
            existing = files(self.lake, table)
            old = pq.read_schema(existing[-1]) if existing else None
        self.last[table] = schema
        if old is None:
            return []
        if added := added_columns(old, schema):
            log.info("%s: new column(s) %s", table, added)
        return [f"{table}: {w}" for w in schema_changes(old, schema)]
