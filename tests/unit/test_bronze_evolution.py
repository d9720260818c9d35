"""Schema-change judgement and reader edge cases for bronze."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.bronze import bronze_tables, files
from pipelines.bronze.evolution import added_columns, is_widening, schema_changes
from pipelines.bronze.layout import BatchId
from pipelines.bronze.writer import write_batch
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (pa.int32(), pa.int64(), True),
        (pa.int64(), pa.int32(), False),
        (pa.int32(), pa.string(), False),
        (pa.decimal128(10, 2), pa.decimal128(12, 2), True),
        (pa.decimal128(10, 2), pa.decimal128(10, 3), False),  # loses an integer digit
        (pa.decimal128(10, 2), pa.decimal128(11, 3), True),
        (pa.float32(), pa.float64(), True),
        (pa.timestamp("us", "UTC"), pa.timestamp("ns", "UTC"), True),
        (pa.timestamp("us"), pa.timestamp("us", "UTC"), False),
        (pa.list_(pa.int16()), pa.list_(pa.int32()), True),
        (pa.struct([("a", pa.int32())]), pa.struct([("a", pa.int64()), ("b", pa.int8())]), True),
    ],
)
def test_widening(old: pa.DataType, new: pa.DataType, ok: bool) -> None:
    assert is_widening(old, new) is ok


def test_schema_changes_report_only_incompatible() -> None:
    old = pa.schema([("id", pa.int32()), ("label", pa.string()), ("gone", pa.int8())])
    new = pa.schema([("id", pa.int64()), ("label", pa.int32()), ("note", pa.string())])
    assert schema_changes(old, new) == ["column 'label' changed type string -> int32"]
    assert added_columns(old, new) == ["note"]


def test_schema_named_like_transactions_dir_does_not_mix(tmp_path: Path) -> None:
    odd = QualifiedName("_transactions", "t")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    row = pa.table({"id": [1], "_source_ts": pa.array([now], pa.timestamp("us", "UTC"))})
    tx = pa.table({"id": ["tx1"], "_source_ts": pa.array([now], pa.timestamp("us", "UTC"))})
    write_batch(tmp_path, BatchId("a", 0, 0, 0), {odd: row}, None, None, now)
    write_batch(tmp_path, BatchId("tx", 0, 0, 0), {}, tx, None, now)
    assert [p.parent.parent.name for p in files(tmp_path, odd)] == ["t"]
    assert len(files(tmp_path, "_transactions")) == 1
    assert set(bronze_tables(tmp_path)) == {odd, "_transactions"}
