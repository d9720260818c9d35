"""Iceberg schema evolution for the lake's rows: tables follow the source's DDL, losing nothing.

``evolve(table, rows)`` makes ``table`` able to hold ``rows`` (already ``conform``-ed) in one
schema commit, or none when nothing changed:

- a new column is added (optional; older rows read NULL), in Iceberg, by field id;
- a widened type is promoted where Iceberg allows it (int -> long, float -> double, decimal
  precision up at the same scale);
- a column missing from ``rows`` stays (its rows read NULL): Debezium drops a column from the
  events, the lake never drops history;
- any other change of type (``ALTER COLUMN v TYPE text`` over an int) cannot be promoted: the
  old column is renamed ``<name>__<old type>`` (its values keep their field id, type and
  data) and ``<name>`` is added with the new type. Nothing is rewritten or lost.

Temporal columns are written without min/max statistics (``counts``): PostgreSQL's
``infinity`` is kept as the lake's infinity sentinel, which pyiceberg cannot turn into a
Python date to record as a bound.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.exceptions import ValidationError
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible
from pyiceberg.schema import Schema, index_by_name
from pyiceberg.table import Table
from pyiceberg.types import DateType, TimestampType, TimestamptzType, TimeType

from pipelines.iceberg.catalog import retry_on_conflict, set_properties

METRICS_PREFIX = "write.metadata.metrics.column."
_TEMPORAL = (DateType, TimeType, TimestampType, TimestamptzType)


def evolve(table: Table, rows: pa.Schema) -> list[str]:
    """Let ``table`` hold ``rows``; return what changed. Another process evolving the same
    table at the same time makes the schema commit fail: refresh, and decide again."""
    return retry_on_conflict(table, lambda: _evolve(table, rows))


def _evolve(table: Table, rows: pa.Schema) -> list[str]:
    current = table.schema()
    if _fits(table, rows):
        _statistics(table)
        return []
    renames = {
        f.name: _kept_name(current, f.name)
        for f in rows
        if f.name in current.column_names and not _promotable(table, f)
    }
    update = table.update_schema()
    for old, new in renames.items():
        update.rename_column(old, new)
    if renames:  # the rename must commit before a column of the old name can be added
        update.commit()
        table.refresh()
        update = table.update_schema()
    update.union_by_name(rows)
    after = update._apply()  # noqa: SLF001 (pyiceberg: the schema this update would commit)
    changes = [f"{old} kept as {new}: its type cannot become the new one" for old, new in renames.items()]  # fmt: skip
    before = table.schema()
    if after != before:
        update.commit()
        table.refresh()
        for f in after.fields:
            if f.name not in before.column_names:
                changes.append(f"added column {f.name}")
            elif before.find_field(f.name).field_type != f.field_type:
                changes.append(f"{f.name} widened to {f.field_type}")
    _statistics(table)
    return changes


def _fits(table: Table, rows: pa.Schema) -> bool:
    """Whether ``table`` holds ``rows`` as it is: each column is in the schema with its type
    (or one it is written as, e.g. int32 into long), so nothing would change. The common case,
    decided without validating each column as a schema update (a metadata copy each)."""
    try:
        _check_pyarrow_schema_compatible(
            table.schema(), provided_schema=rows, format_version=table.format_version
        )
    except (ValueError, TypeError):  # a column to add, widen or keep aside: the full path
        return False
    return True


def _promotable(table: Table, field: pa.Field) -> bool:
    try:
        table.update_schema().union_by_name(pa.schema([field]))  # validated, never committed
    except (ValidationError, ValueError):  # ValueError: a struct where a primitive is, or back
        return False
    return True


def _kept_name(schema: Schema, name: str) -> str:
    kind = str(schema.find_field(name).field_type).split("(")[0].split("<")[0]
    base, taken, n = f"{name}__{kind}", set(schema.column_names), 2
    candidate = base
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _statistics(table: Table) -> None:
    """``counts`` metrics for every temporal column (see the module docstring)."""
    schema = table.schema()
    wanted = {
        f"{METRICS_PREFIX}{name}": "counts"
        for name, field_id in index_by_name(schema).items()
        if isinstance(schema.find_field(field_id).field_type, _TEMPORAL)
    }
    set_properties(table, wanted)
