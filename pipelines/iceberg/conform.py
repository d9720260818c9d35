"""Bronze and silver rows as Iceberg can hold them: one rule per Arrow type Iceberg lacks.

The lake keeps every value decode produces; Iceberg's type system is smaller, so on the way
into an Iceberg table each column is mapped to the nearest Iceberg type **without losing a
value** (PostgreSQL never has more than microsecond precision, so the nanosecond and
millisecond time types become microseconds exactly; a cast that would truncate raises):

=====================================  ====================================================
Arrow (lake)                           Iceberg
=====================================  ====================================================
int8, int16, uint8, uint16             int
uint32                                 long
float16                                float
timestamp[s|ms|ns] (with or w/o zone)  timestamp / timestamptz (microseconds)
time32, time64                         time (microseconds), or long microseconds since
                                       midnight with ``CHANGELAKE_ICEBERG_TIME_AS_MICROS``
                                       (Spark's Iceberg reader refuses time columns)
duration[*]                            long, microseconds (Iceberg has no duration)
month_day_nano_interval                struct<months: int, days: int, nanoseconds: long>
dictionary<value>                      value
null (a column with no value yet)      left out until a batch types it
=====================================  ====================================================

and the one reserved name: Iceberg engines own a ``_partition`` metadata column (Spark refuses
to read a data column of that name), so bronze's Kafka partition column is ``_kafka_partition``
in Iceberg (``ICEBERG_COLUMN_NAMES``). Nested lists, structs and maps are mapped inside.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ICEBERG_COLUMN_NAMES

INT64_MAX = 2**63 - 1
_PER_MICRO = {"s": 1_000_000, "ms": 1_000}
INTERVAL = pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


def iceberg_type(t: pa.DataType, *, time_as_micros: bool = False) -> pa.DataType | None:
    """The Arrow type an Iceberg column holds values of ``t`` as; None: leave the column out."""
    if pa.types.is_null(t):
        return None
    if pa.types.is_dictionary(t):
        return iceberg_type(t.value_type, time_as_micros=time_as_micros)
    if t in (pa.int8(), pa.int16(), pa.uint8(), pa.uint16()):
        return pa.int32()
    if t == pa.uint32():
        return pa.int64()
    if t == pa.float16():
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", t.tz)
    if pa.types.is_time(t):
        return pa.int64() if time_as_micros else pa.time64("us")
    if pa.types.is_duration(t):
        return pa.int64()
    if t == pa.month_day_nano_interval():
        return INTERVAL
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = iceberg_type(t.value_type, time_as_micros=time_as_micros)
        return pa.list_(inner if inner is not None else pa.string())
    if pa.types.is_struct(t):
        fields = [
            pa.field(f.name, it, nullable=True)
            for f in t
            if (it := iceberg_type(f.type, time_as_micros=time_as_micros)) is not None
        ]
        return pa.struct(fields) if fields else None
    if pa.types.is_map(t):
        return pa.map_(
            iceberg_type(t.key_type, time_as_micros=time_as_micros),
            iceberg_type(t.item_type, time_as_micros=time_as_micros) or pa.string(),
        )
    return t


def _conform(arr: pa.Array, target: pa.DataType) -> pa.Array:
    t = arr.type
    if t == target:
        return arr
    if pa.types.is_dictionary(t):
        return _conform(arr.dictionary_decode(), target)
    if pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        return _micros(arr, t.unit).cast(target)
    if t == pa.month_day_nano_interval():
        return _intervals(arr)
    if pa.types.is_struct(t):
        children = {f.name: arr.field(i) for i, f in enumerate(t)}
        return pa.StructArray.from_arrays(
            [_conform(children[f.name], f.type) for f in target],
            fields=list(target),
            mask=arr.is_null() if arr.null_count else None,
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.ListArray.from_arrays(
            unsliced_offsets(arr),
            _conform(arr.values, target.value_type),
            type=target,
            mask=arr.is_null() if arr.null_count else None,
        )
    return arr.cast(target)  # safe: raises rather than truncate a value


def unsliced_offsets(arr: pa.Array) -> pa.Array:
    """``arr.offsets`` as an array of its own (Arrow refuses a validity mask with offsets that
    are a slice of a sliced list's buffer); they still point into ``arr.values``."""
    return pa.concat_arrays([arr.offsets]) if arr.offset else arr.offsets


def _micros(arr: pa.Array, unit: str) -> pa.Array:
    """Temporal values as int64 microseconds; the lake's infinities (+-INT64_MAX at any unit,
    DuckDB's) stay infinities; a nanosecond value that is not a whole microsecond raises."""
    ticks = arr.cast(pa.int32() if arr.type.bit_width == 32 else pa.int64()).cast(pa.int64())
    if unit == "us":
        return ticks
    infinite = pc.equal(pc.abs(ticks), INT64_MAX)
    if unit == "ns":
        scaled = pc.divide(ticks, 1000)  # integer division, truncating
        inexact = pc.and_(pc.invert(infinite), pc.not_equal(pc.multiply(scaled, 1000), ticks))
        if pc.any(inexact).as_py():
            raise ValueError(f"{arr.type} values below a microsecond cannot be kept in Iceberg")
    else:
        scaled = pc.multiply(ticks, _PER_MICRO[unit])  # fits: PostgreSQL stores microseconds
    return pc.if_else(infinite, ticks, scaled)


def _intervals(arr: pa.Array) -> pa.Array:
    """month_day_nano -> struct, vectorised: the 16-byte values viewed as int32 and int64."""
    n, buf = arr.offset + len(arr), arr.buffers()[1]

    def view(t: pa.DataType, per: int) -> pa.Array:
        flat = pa.Array.from_buffers(t, n * per, [None, buf])
        return pa.FixedSizeListArray.from_arrays(flat, per).slice(arr.offset, len(arr))

    as_int32, as_int64 = view(pa.int32(), 4), view(pa.int64(), 2)
    parts = [
        pc.list_element(as_int32, 0),
        pc.list_element(as_int32, 1),
        pc.list_element(as_int64, 1),
    ]
    return pa.StructArray.from_arrays(
        parts, fields=list(INTERVAL), mask=arr.is_null() if arr.null_count else None
    )


def to_iceberg(rows: pa.Table, *, time_as_micros: bool = False) -> pa.Table:
    """``rows`` with every column as Iceberg holds it (see the module docstring);
    ``time_as_micros``: times of day as long microseconds since midnight (for Spark)."""
    names, columns = [], []
    for field, column in zip(rows.schema, rows.columns, strict=True):
        target = iceberg_type(field.type, time_as_micros=time_as_micros)
        if target is None:
            continue
        chunks = [_conform(c, target) for c in column.chunks]
        names.append(ICEBERG_COLUMN_NAMES.get(field.name, field.name))
        columns.append(pa.chunked_array(chunks, target))
    return pa.table(columns, names=names)
