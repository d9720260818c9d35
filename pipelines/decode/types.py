"""Kafka Connect field schema -> Arrow type and a columnar converter for its JSON values.

The semantic ``name`` of a field decides first, then its plain Connect ``type``. Each converter
takes the column's raw JSON values for a whole batch (``None`` for NULL) and returns one
``pa.Array``, so per-row work stays in tight comprehensions and the heavy lifting in Arrow.

Documented choices (see pipelines/decode/README.md for the full table):

* ``Decimal`` -> decimal128(p, s) when DuckDB holds it (p <= 38, s >= 0:
  ``duckdb_holds_decimal``), else exact plain text (``string``), like ``VariableScaleDecimal``.
  Without ``connect.decimal.precision`` (PostgreSQL MONEY) -> decimal128(38, s), which holds
  every MONEY value.
* ``VariableScaleDecimal`` (NUMERIC without typmod) -> ``string`` holding the exact decimal in
  plain notation (``-12.3400``). No fixed Arrow decimal holds every such value and a per-batch
  choice would make files disagree, so text is the only exact, stable type.
* ``ZonedTime`` -> ``string`` exactly as Debezium sends it (``HH:MM:SS[.ffffff]Z``, UTC).
* ``MicroDuration`` -> duration[us] (Debezium already folded months as 30 days);
  ``Interval`` (ISO-8601 text) -> month_day_nano_interval (exact months/days/nanos).
* +/-infinity dates and timestamps -> DuckDB's own infinity sentinels (int32/int64 max and
  -max), so DuckDB reads them back as ``infinity``/``-infinity``; each hit is reported as a warning.
* float NaN/Infinity arrive as the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` and become
  IEEE values.
* An unknown semantic name falls back to the plain Connect type, with a warning.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

PLACEHOLDER = "__debezium_unavailable_value"
PLACEHOLDER_B64 = base64.b64encode(PLACEHOLDER.encode()).decode()

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
#: DuckDB's infinity sentinels (date: +/-int32 max; timestamp: +/-int64 max).
DATE_INF = (INT32_MAX, -INT32_MAX)
TS_INF = (INT64_MAX, -INT64_MAX)

Converter = Callable[[list], pa.Array]

_PLAIN: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float32(),  # JsonConverter's names for Connect FLOAT32/FLOAT64
    "double": pa.float64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "bytes": pa.binary(),
}

_STRING_NAMES = {
    "io.debezium.data.Json",
    "io.debezium.data.Uuid",
    "io.debezium.data.Xml",
    "io.debezium.data.Enum",
    "io.debezium.data.EnumSet",
    "io.debezium.data.Ltree",
    "io.debezium.data.Tsvector",
    "io.debezium.time.IsoDate",
    "io.debezium.time.IsoTime",
    "io.debezium.time.IsoTimestamp",
    "io.debezium.time.ZonedTime",
    "io.debezium.data.VariableScaleDecimal",
}


#: Semantic types whose plain Connect shape is already the right Arrow shape (no warning).
_PLAIN_OK = {
    "io.debezium.data.DoubleVector",
    "io.debezium.data.FloatVector",
    "io.debezium.data.SparseVector",
    "io.debezium.connector.postgresql.Source",
}


class SchemaMismatch(ValueError):
    """A value that contradicts its Connect schema."""


@dataclass(frozen=True)
class Column:
    """How one Connect field becomes one Arrow column."""

    name: str
    type: pa.DataType
    convert: Converter
    toastable: bool  # can carry the unchanged-TOAST placeholder
    warnings: tuple[str, ...] = ()


def arrow_type_for(connect_schema: dict) -> pa.DataType:
    """The Arrow type for a Connect field schema."""
    return column_for(connect_schema).type


def column_for(schema: dict, name: str = "") -> Column:
    """Build the Arrow type and converter for one Connect field schema (cached per schema)."""
    sem = schema.get("name")
    ctype = schema.get("type")
    params = schema.get("parameters") or {}
    label = name or schema.get("field", "")
    simple = _semantic(sem, ctype, params, label)
    if simple is not None:
        typ, conv, warns = simple
        return Column(label, typ, conv, ctype in ("string", "bytes", "struct"), warns)
    warns: tuple[str, ...] = ()
    if sem and sem not in _PLAIN_OK and not sem.startswith("io.debezium.data.geometry."):
        warns = (f"column {label!r}: unknown semantic type {sem!r}, kept as plain {ctype!r}",)
    if ctype in _PLAIN:
        typ = _PLAIN[ctype]
        conv = {
            "float": _floats,
            "double": _floats,
            "float32": _floats,
            "float64": _floats,
            "bytes": _bytes,
        }.get(ctype, _plain)
        return Column(
            label, typ, lambda v, t=typ, c=conv: c(v, t), ctype in ("string", "bytes"), warns
        )
    if ctype == "array":
        item = column_for(schema["items"], label)
        return Column(
            label, pa.list_(item.type), _list_converter(item), True, warns + item.warnings
        )
    if ctype == "map":
        k, v = column_for(schema["keys"], label), column_for(schema["values"], label)
        return Column(label, pa.map_(k.type, v.type), _map_converter(k, v), True, warns)
    if ctype == "struct":
        fields = [column_for(f, f["field"]) for f in schema.get("fields", [])]
        typ = pa.struct([pa.field(f.name, f.type) for f in fields])
        sub = tuple(w for f in fields for w in f.warnings)
        return Column(label, typ, _struct_converter(fields, typ), True, warns + sub)
    raise SchemaMismatch(f"column {label!r}: unsupported Connect type {ctype!r}")


def _semantic(sem: str | None, ctype: str | None, params: dict, label: str):
    """Types decided by the semantic name; None when the name is not one we map specially."""
    if sem is None:
        return None
    if sem == "org.apache.kafka.connect.data.Decimal":
        return _decimal(params, label)
    if sem in _STRING_NAMES:
        if sem == "io.debezium.data.VariableScaleDecimal":
            return pa.string(), _varscale, ()
        return pa.string(), lambda v: _plain(v, pa.string()), ()
    if sem == "io.debezium.data.Bits" and ctype == "bytes":
        return pa.binary(), lambda v: _bytes(v, pa.binary()), ()
    if sem in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return (
            pa.date32(),
            lambda v: _infinite_ints(v, pa.int32(), pa.date32(), DATE_SENTINELS, label),
            (),
        )
    times = {
        "io.debezium.time.Time": (pa.time64("us"), 1000),
        "io.debezium.time.MicroTime": (pa.time64("us"), 1),
        "io.debezium.time.NanoTime": (pa.time64("ns"), 1),
    }
    if sem in times:
        typ, mul = times[sem]
        return typ, lambda v: _scaled_ints(v, mul).cast(typ), ()
    stamps = {
        "io.debezium.time.Timestamp": (pa.timestamp("ms"), TS_MS_SENTINELS),
        "org.apache.kafka.connect.data.Timestamp": (pa.timestamp("ms"), TS_MS_SENTINELS),
        "io.debezium.time.MicroTimestamp": (pa.timestamp("us"), TS_SENTINELS),
        "io.debezium.time.NanoTimestamp": (pa.timestamp("ns"), TS_SENTINELS),
    }
    if sem in stamps:
        typ, marks = stamps[sem]
        return typ, lambda v: _infinite_ints(v, pa.int64(), typ, marks, label), ()
    if sem == "io.debezium.time.ZonedTimestamp":
        return pa.timestamp("us", "UTC"), lambda v: _zoned_timestamps(v, label), ()
    if sem == "io.debezium.time.MicroDuration":
        return pa.duration("us"), lambda v: pa.array(v, pa.int64()).cast(pa.duration("us")), ()
    if sem == "io.debezium.time.Interval" and ctype == "string":
        return pa.month_day_nano_interval(), _intervals, ()
    return None


# --- plain values ----------------------------------------------------------------------------


def _plain(values: list, typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        raise SchemaMismatch(f"value does not fit {typ}: {exc}") from exc


_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _floats(values: list, typ: pa.DataType) -> pa.Array:
    """JSON has no NaN/Infinity; the JsonConverter writes them as strings."""
    if any(v.__class__ is str for v in values):
        try:
            values = [_SPECIAL_FLOATS[v] if v.__class__ is str else v for v in values]
        except KeyError as exc:
            raise SchemaMismatch(f"not a float: {exc.args[0]!r}") from None
    return _plain(values, typ)


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise SchemaMismatch(f"bad base64 bytes value {str(value)[:40]!r}: {exc}") from None


def _bytes(values: list, typ: pa.DataType) -> pa.Array:
    return _plain([None if v is None else _b64(v) for v in values], typ)


def _scaled_ints(values: list, mul: int) -> pa.Array:
    arr = _plain(values, pa.int64())
    return pc.multiply_checked(arr, mul) if mul != 1 else arr


#: Labels of columns whose +/-infinity values were mapped to sentinels, collected per batch.
INFINITY_HITS: ContextVar[list[str] | None] = ContextVar("INFINITY_HITS", default=None)


def _note_infinity(label: str) -> None:
    hits = INFINITY_HITS.get()
    if hits is not None:
        hits.append(label)


def _infinite_ints(
    values: list, raw: pa.DataType, typ: pa.DataType, sentinels: dict[int, int], label: str
) -> pa.Array:
    """Ints with Debezium's +/-infinity markers replaced by DuckDB's sentinels.

    The markers were read off recorded messages (tests/fixtures/debezium, every precision,
    streamed and snapshot rows): for timestamps Debezium passes PgJDBC's
    ``DATE_POSITIVE_INFINITY``/``DATE_NEGATIVE_INFINITY`` (``9223372036825200000`` /
    ``-9223372036832400000``) through as microseconds (``MicroTimestamp``, precision 4-6) and
    divided by 1000 as milliseconds (``Timestamp``, precision 0-3); for dates it emits overflowed
    day numbers, ``-2147472692``/``-2147472691`` (+/-infinity) when streaming and
    ``-622191234``/``-625821272`` in a snapshot. All lie far outside PostgreSQL's own range, so
    no real value is ever mistaken for one. DuckDB's sentinels are the same int64 at every
    timestamp unit, and its Parquet reader maps them to infinity for ms, us and ns alike.
    """
    if any(v in sentinels for v in values if v.__class__ is int):
        _note_infinity(label)
        values = [sentinels.get(v, v) if v.__class__ is int else v for v in values]
    return _plain(values, raw).cast(typ)


#: Debezium's infinity markers -> DuckDB's infinity sentinels.
DATE_SENTINELS = {
    -2147472692: DATE_INF[0],
    -2147472691: DATE_INF[1],
    -622191234: DATE_INF[0],
    -625821272: DATE_INF[1],
}
TS_SENTINELS = {9223372036825200000: TS_INF[0], -9223372036832400000: TS_INF[1]}
TS_MS_SENTINELS = {9223372036825200: TS_INF[0], -9223372036832400: TS_INF[1]}


_FRACTION = r"(\.\d{6})\d+"


def _zoned_timestamps(values: list, label: str) -> pa.Array:
    """ISO strings with 0-9 fraction digits and ``Z``; ``infinity``/``-infinity`` -> sentinels."""
    typ = pa.timestamp("us", "UTC")
    inf = [i for i, v in enumerate(values) if v in ("infinity", "-infinity")]
    marks = {}
    if inf:
        _note_infinity(label)
        values = list(values)
        marks = {i: values[i] for i in inf}
        for i in inf:
            values[i] = None
    arr = _plain(values, pa.string())
    arr = pc.replace_substring_regex(arr, _FRACTION, r"\1")
    if marks or pc.any(pc.match_substring_regex(arr, r"^[+-]")).as_py():
        return _zoned_by_rows(arr, marks)
    try:
        return arr.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatch(f"bad ZonedTimestamp: {exc}") from None


_SIGNED_ISO = re.compile(r"^([+-]\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$")


def _zoned_by_rows(arr: pa.Array, marks: dict[int, str]) -> pa.Array:
    """The rare batch with infinity or a signed ISO year (``-4712-01-01T00:00:00Z`` is 4713 BC,
    ``+10000-...`` is past 9999), which Arrow's parser refuses: those rows by hand, the rest by
    Arrow's own cast."""
    typ = pa.timestamp("us", "UTC")
    fixed = {i: TS_INF[0] if v == "infinity" else TS_INF[1] for i, v in marks.items()}
    signed = pc.match_substring_regex(arr, r"^[+-]")
    for i in pc.indices_nonzero(pc.fill_null(signed, False)).to_pylist():
        m = _SIGNED_ISO.match(arr[i].as_py())
        if m is None:
            raise SchemaMismatch(f"bad ZonedTimestamp: {arr[i].as_py()!r}")
        y, mo, d, h, mi, sec, frac = m.groups()
        secs = _days_from_civil(int(y), int(mo), int(d)) * 86400 + int(h) * 3600
        fixed[i] = (secs + int(mi) * 60 + int(sec)) * 10**6 + int((frac or "").ljust(6, "0"))
    rest = pc.if_else(signed, pa.scalar(None, pa.string()), arr)
    try:
        ints = rest.cast(typ).cast(pa.int64()).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatch(f"bad ZonedTimestamp: {exc}") from None
    for i, v in fixed.items():
        ints[i] = v
    return pa.array(ints, pa.int64()).cast(typ)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year (ISO: 0 is 1 BC)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_ISO_INTERVAL = re.compile(
    r"^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?[\d.]+)S)?)?$"
)


def _intervals(values: list) -> pa.Array:
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        m = _ISO_INTERVAL.match(v)
        if not m:
            raise SchemaMismatch(f"bad ISO-8601 interval {v!r}")
        y, mo, d, h, mi, s = (g or "0" for g in m.groups())
        nanos = (int(h) * 3600 + int(mi) * 60) * 10**9 + int(Decimal(s) * 10**9)
        out.append((int(y) * 12 + int(mo), int(d), nanos))
    return pa.array(out, pa.month_day_nano_interval())


# --- decimals -------------------------------------------------------------------------------


def _decimal(params: dict, label: str):
    try:
        scale = int(params.get("scale", 0))
        prec = params.get("connect.decimal.precision")
        precision = int(prec) if prec is not None else 38
    except ValueError as exc:
        raise SchemaMismatch(f"column {label!r}: bad decimal parameters {params}") from exc
    precision = max(precision, scale, 1)
    if not duckdb_holds_decimal(precision, scale):
        return pa.string(), lambda v: _decimal_strings(v, scale), ()
    typ = pa.decimal128(precision, scale)
    return typ, lambda v: _decimals(v, typ, 16, precision), ()


#: The widest DECIMAL DuckDB has; a Parquet decimal beyond it is read as DOUBLE (inexact).
DUCKDB_DECIMAL_DIGITS = 38


def duckdb_holds_decimal(precision: int, scale: int) -> bool:
    """Whether DuckDB reads a Parquet ``decimal(precision, scale)`` back exactly as DECIMAL.

    Beyond 38 digits it reads DOUBLE, and Parquet has no negative scale at all, so those
    columns are stored as exact plain text instead (the representation NUMERIC without
    typmod already has)."""
    return precision <= DUCKDB_DECIMAL_DIGITS and scale >= 0


def _unscaled(value: str) -> int:
    return int.from_bytes(_b64(value), "big", signed=True)


def _decimals(values: list, typ: pa.DataType, width: int, precision: int) -> pa.Array:
    """Base64 big-endian two's complement -> fixed-width little-endian Arrow decimal buffers."""
    fast = _decimals_fast(values, typ, width, precision)
    if fast is not None:
        return fast
    limit = 10**precision
    data = bytearray()
    valid = []
    zero = bytes(width)
    for v in values:
        if v is None:
            data += zero
            valid.append(False)
            continue
        if v.__class__ is not str:
            raise SchemaMismatch(f"decimal must be base64 text, got {v!r}")
        n = _unscaled(v)
        if not -limit < n < limit:
            raise SchemaMismatch(f"decimal {n} exceeds precision {precision}")
        data += n.to_bytes(width, "little", signed=True)
        valid.append(True)
    mask = pa.array(valid, pa.bool_())
    return pa.Array.from_buffers(
        typ, len(values), [mask.buffers()[1] if not all(valid) else None, pa.py_buffer(data)]
    )


def _decimals_fast(values: list, typ: pa.DataType, width: int, precision: int) -> pa.Array | None:
    """``_decimals`` in comprehensions for the clean case (every value ASCII base64 text within
    its precision); None when anything is off, so ``_decimals`` raises its exact error."""
    a2b, from_bytes = binascii.a2b_base64, int.from_bytes
    try:
        if None in values:
            valid = [v is not None for v in values]
            present = [v for v in values if v is not None]
        else:
            valid, present = None, values
        if not all(v.__class__ is str and v.isascii() for v in present):
            return None
        ints = [from_bytes(a2b(v, strict_mode=True), "big", signed=True) for v in present]
    except (binascii.Error, ValueError, TypeError):
        return None
    limit = 10**precision
    if ints and not (-limit < min(ints) and max(ints) < limit):
        return None
    if valid is not None:
        ints_iter = iter(ints)
        ints = [next(ints_iter) if ok else 0 for ok in valid]
    data = b"".join([n.to_bytes(width, "little", signed=True) for n in ints])
    mask = pa.array(valid, pa.bool_()).buffers()[1] if valid is not None else None
    return pa.Array.from_buffers(typ, len(values), [mask, pa.py_buffer(data)])


def _exact_text(unscaled: int, scale: int) -> str:
    """Plain decimal text of ``unscaled * 10**-scale``, exact at any size (no float, no context)."""
    digits = str(abs(unscaled))
    if scale > 0:
        digits = digits.rjust(scale + 1, "0")
        digits = f"{digits[:-scale]}.{digits[-scale:]}"
    elif scale < 0:
        digits += "0" * -scale
    return f"-{digits}" if unscaled < 0 else digits


def _decimal_strings(values: list, scale: int) -> pa.Array:
    return pa.array(
        [None if v is None else _exact_text(_unscaled(v), scale) for v in values], pa.string()
    )


def _varscale(values: list) -> pa.Array:
    """VariableScaleDecimal structs ``{"scale": s, "value": base64}`` -> exact plain text."""
    out = []
    for v in values:
        if v is None:
            out.append(None)
        elif v.__class__ is dict and "value" in v and "scale" in v:
            out.append(_exact_text(_unscaled(v["value"]), int(v["scale"])))
        else:
            raise SchemaMismatch(f"VariableScaleDecimal must be {{scale, value}}, got {v!r}")
    return pa.array(out, pa.string())


# --- nested ---------------------------------------------------------------------------------


def _list_converter(item: Column) -> Converter:
    def convert(values: list) -> pa.Array:
        offsets = [0]
        flat: list = []
        for v in values:
            if v is not None:
                if v.__class__ is not list:
                    raise SchemaMismatch(f"array value must be a JSON array, got {str(v)[:40]!r}")
                flat.extend(v)
            offsets.append(len(flat))
        mask = pa.array([v is None for v in values], pa.bool_())
        return pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()),
            item.convert(flat),
            mask=mask if any(v is None for v in values) else None,
        )

    return convert


def _map_converter(key: Column, value: Column) -> Converter:
    """JsonConverter writes string-keyed maps as objects, other maps as ``[[k, v], ...]``."""

    def convert(values: list) -> pa.Array:
        offsets = [0]
        ks: list = []
        vs: list = []
        for v in values:
            if v.__class__ is dict:
                ks.extend(v.keys())
                vs.extend(v.values())
            elif v.__class__ is list:
                for pair in v:
                    ks.append(pair[0])
                    vs.append(pair[1])
            elif v is not None:
                raise SchemaMismatch(f"map value must be an object, got {str(v)[:40]!r}")
            offsets.append(len(ks))
        mask = pa.array([v is None for v in values], pa.bool_())
        return pa.MapArray.from_arrays(
            pa.array(offsets, pa.int32()), key.convert(ks), value.convert(vs), mask=mask
        )

    return convert


def _struct_converter(fields: list[Column], typ: pa.DataType) -> Converter:
    def convert(values: list) -> pa.Array:
        empty: dict = {}
        for v in values:
            if v is not None and v.__class__ is not dict:
                raise SchemaMismatch(f"struct value must be an object, got {str(v)[:40]!r}")
        rows = [empty if v is None else v for v in values]
        children = [f.convert([r.get(f.name) for r in rows]) for f in fields]
        mask = pa.array([v is None for v in values], pa.bool_())
        return pa.StructArray.from_arrays(children, fields=list(typ), mask=mask)

    return convert
