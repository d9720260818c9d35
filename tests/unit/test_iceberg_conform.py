"""The lake's values as Iceberg holds them (conform), the schema following the source (evolve),
and the pyiceberg fix that keeps NULL lists of structs NULL: on real pyiceberg and Parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.iceberg import pyiceberg_fixes
from pipelines.iceberg.catalog import ensure_table, open_catalog
from pipelines.iceberg.conform import INT64_MAX, INTERVAL, iceberg_type, to_iceberg
from pipelines.iceberg.evolve import METRICS_PREFIX, evolve
from pipelines.iceberg.names import BRONZE
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit
INF = [INT64_MAX, -INT64_MAX]


def _ints(column: pa.ChunkedArray | pa.Array) -> list:
    return column.cast(pa.int64()).to_pylist()


@pytest.mark.parametrize(
    ("unit", "values", "micros"),
    [
        ("ms", [1, -1500, None, *INF], [1000, -1_500_000, None, *INF]),
        ("ns", [1000, -2_000_000, None, *INF], [1, -2000, None, *INF]),
        ("s", [3, None], [3_000_000, None]),
    ],
)
def test_timestamps_become_microseconds_exactly_and_infinity_stays(
    unit: str, values: list, micros: list
) -> None:
    for tz in (None, "UTC"):
        typ = pa.timestamp(unit, tz)
        got = to_iceberg(pa.table({"t": pa.array(values, pa.int64()).cast(typ)}))["t"]
        assert got.type == pa.timestamp("us", tz)
        assert _ints(got) == micros


def test_a_value_below_a_microsecond_is_refused_not_truncated() -> None:
    rows = pa.table({"t": pa.array([1001], pa.int64()).cast(pa.timestamp("ns"))})
    with pytest.raises(ValueError, match="below a microsecond"):
        to_iceberg(rows)


def test_times_durations_intervals_small_ints_and_dictionaries() -> None:
    rows = pa.table(
        {
            "tm": pa.array([1, None], pa.int32()).cast(pa.time32("ms")),
            "tn": pa.array([5000, 7000], pa.int64()).cast(pa.time64("ns")),
            "d": pa.array([90, None], pa.int64()).cast(pa.duration("ms")),
            "i": pa.array([pa.MonthDayNano([1, -2, 3_000]), None], pa.month_day_nano_interval()),
            "s": pa.array([-3, 4], pa.int16()),
            "u": pa.array([1, 2], pa.uint32()),
            "e": pa.array(["a", None]).dictionary_encode(),
            "n": pa.nulls(2),
            "_partition": pa.array([0, 1], pa.int32()),
        }
    )
    got = to_iceberg(rows)
    assert got.schema.names == ["tm", "tn", "d", "i", "s", "u", "e", "_kafka_partition"]
    assert got["tm"].type == got["tn"].type == pa.time64("us")
    assert _ints(got["tm"]) == [1000, None] and _ints(got["tn"]) == [5, 7]
    assert got["d"].to_pylist() == [90_000, None]
    assert got["i"].type == INTERVAL
    assert got["i"].to_pylist() == [{"months": 1, "days": -2, "nanoseconds": 3000}, None]
    assert got["s"].type == pa.int32() and got["s"].to_pylist() == [-3, 4]
    assert got["u"].type == pa.int64()
    assert got["e"].type == pa.string() and got["e"].to_pylist() == ["a", None]
    assert got["_kafka_partition"].to_pylist() == [0, 1]


def test_nested_values_are_mapped_inside_and_nulls_kept() -> None:
    struct = pa.struct([("a", pa.int16()), ("gone", pa.null()), ("t", pa.timestamp("ms"))])
    rows = pa.table(
        {
            "l": pa.array([[1, None], None, []], pa.list_(pa.int8())),
            "st": pa.array([{"a": 1, "gone": None, "t": 2}, None, {"a": None}], struct),
        }
    )
    lists = pa.array([[{"a": 1, "gone": None, "t": 2}], None, []], pa.list_(struct))
    got = to_iceberg(rows)
    assert iceberg_type(struct) == pa.struct([("a", pa.int32()), ("t", pa.timestamp("us"))])
    assert got["l"].to_pylist() == [[1, None], None, []]
    assert got["st"].to_pylist()[1] is None
    assert got["st"].to_pylist()[0]["a"] == 1
    sliced = to_iceberg(pa.table({"ls": lists.slice(1)}))["ls"]
    assert sliced.to_pylist() == [None, []]
    whole = to_iceberg(pa.table({"ls": lists}))["ls"].to_pylist()
    assert whole[0][0]["a"] == 1 and whole[1:] == [None, []]


@pytest.fixture
def table_of(tmp_path: Path):  # noqa: ANN201
    catalog = open_catalog(Settings(_env_file=None, home=tmp_path))

    def make(schema: pa.Schema, name: str = "t"):  # noqa: ANN202
        return ensure_table(catalog, BRONZE, QualifiedName("zoo", name), schema)

    return make


def _data_file_rows(table) -> pa.Table:  # noqa: ANN001
    paths = [t.file.file_path for t in table.scan().plan_files()]
    return pa.concat_tables([pq.read_table(p.removeprefix("file://")) for p in paths])


def test_a_null_list_of_structs_stays_null_in_the_files(table_of) -> None:  # noqa: ANN001
    typ = pa.list_(pa.struct([("x", pa.int64())]))
    rows = pa.table({"l": pa.array([None, [{"x": 1}], []], typ)})
    table = table_of(rows.schema)
    table.append(rows)
    assert _data_file_rows(table)["l"].to_pylist() == [None, [{"x": 1}], []]
    assert table.scan().to_arrow()["l"].to_pylist() == [None, [{"x": 1}], []]
    table.append(pa.table({"l": pa.array([[{"x": 2}], None, [{"x": 3}]], typ)}).slice(1))
    assert sorted(map(str, _data_file_rows(table)["l"].to_pylist())) == sorted(
        map(str, [None, [{"x": 1}], [], None, [{"x": 3}]])
    )


def test_the_pyiceberg_fix_is_still_needed(table_of, monkeypatch) -> None:  # noqa: ANN001
    """Fails once pyiceberg keeps NULL lists itself: then remove pyiceberg_fixes."""
    original = pyiceberg_fixes._list_keeping_nulls  # noqa: SLF001
    monkeypatch.setattr(pyiceberg_fixes._Visitor, "list", _UNPATCHED)  # noqa: SLF001
    typ = pa.list_(pa.struct([("x", pa.int64())]))
    rows = pa.table({"l": pa.array([None, [{"x": 1}]], typ)})
    table = table_of(rows.schema, "unpatched")
    table.append(rows)
    assert _data_file_rows(table)["l"].to_pylist() == [[], [{"x": 1}]]  # the bug
    assert original is not _UNPATCHED


_UNPATCHED = pyiceberg_fixes._ORIGINAL  # noqa: SLF001


def test_schema_follows_adds_widens_and_keeps_an_incompatible_column(table_of) -> None:  # noqa: ANN001
    first = pa.table({"k": pa.array([1], pa.int32()), "v": pa.array([1], pa.int32())})
    table = table_of(first.schema)
    assert evolve(table, first.schema) == []
    table.append(first)
    wider = pa.table({"k": pa.array([2], pa.int64()), "w": pa.array([pa.scalar(1, pa.date32())])})
    assert evolve(table, wider.schema) == ["k widened to long", "added column w"]
    table.append(wider)
    text = pa.table({"k": pa.array([3], pa.int64()), "v": ["three"]})
    changes = evolve(table, text.schema)
    assert changes == ["v kept as v__int: its type cannot become the new one", "added column v"]
    table.append(text)
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["k"])
    assert [(r["k"], r["v__int"], r["v"]) for r in got] == [
        (1, 1, None),
        (2, None, None),
        (3, None, "three"),
    ]
    assert table.properties[f"{METRICS_PREFIX}w"] == "counts"  # a date column: no min/max


def test_a_struct_where_a_primitive_was_and_back_keeps_both(table_of) -> None:  # noqa: ANN001
    """A batch landed out of order (an older struct after a newer text column, as a replayed
    or second lander's batch can be) evolves like any incompatible change: nothing is lost."""
    text = pa.table({"k": [1], "b": ["one"]})
    table = table_of(text.schema, "struct_back")
    table.append(text)
    struct = pa.table({"k": [2], "b": pa.array([{"v": 2}], pa.struct([("v", pa.int64())]))})
    assert (
        evolve(table, struct.schema)[0] == "b kept as b__string: its type cannot become the new one"
    )
    table.append(struct)
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["k"])
    assert [(r["k"], r["b__string"], r["b"]) for r in got] == [
        (1, "one", None),
        (2, None, {"v": 2}),
    ]
