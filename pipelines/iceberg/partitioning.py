"""How a silver Iceberg table is partitioned, and which of its partitions a new state changes.

Silver is copy-on-write: a publish replaces data files. Partitioned by its key, a publish
only has to rewrite the partitions whose rows changed, so an incremental compaction that
touches few keys rewrites few bytes. The partition field is derived from the table's first
key column (rows with one key always share a partition):

- an integer key: ``truncate(W)``, ranges of W consecutive keys. OLTP keys are mostly
  sequential and changes are mostly to recent rows, so they fall in few ranges; W is sized
  so that a range holds about ``target_bytes`` of rows at the density the table has then.
  A truncate partition of a unique key holds at most W rows however the table grows, so W
  is chosen once.
- another key type Iceberg can bucket (text, uuid, numeric, dates, times, bytes):
  ``bucket(N)``; N (a power of two, at most ``MAX_BUCKETS``) grows with the table, by 4x at
  least, each time rewriting it once. Hashing spreads neighbouring keys, so only changes to
  fewer keys than buckets rewrite less than the table.
- no key, a float or boolean key, or a table under twice ``target_bytes``: unpartitioned
  (every publish rewrites the table).

Which partitions changed is decided by comparing the published state with the new one:
per partition value, the row count and the sum of DuckDB's 64-bit row hashes.

A ``truncate`` partition is also a key range (``range_predicate``), so a compaction can read
just the partitions its events touch: what makes its cost follow the change, not the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import BucketTransform, Transform, TruncateTransform
from pyiceberg.types import (
    BinaryType,
    DateType,
    DecimalType,
    FixedType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from pipelines.iceberg.catalog import retry_on_conflict
from pipelines.naming import quote_ident

MAX_BUCKETS = 128
BUCKETABLE = (
    StringType,
    UUIDType,
    DecimalType,
    DateType,
    TimeType,
    TimestampType,
    TimestamptzType,
    BinaryType,
    FixedType,
)
PART = "__changelake_part"  # the partition value column while diffing (never written)
# per partition value of each state: its rows and the sum of their 64-bit hashes; the values
# where the two differ
DIFF_SQL = """
WITH o AS (
    SELECT __changelake_part AS p, count(*) AS n,
           sum(hash(*COLUMNS(* EXCLUDE (__changelake_part)))::HUGEINT) AS h
    FROM old_rows GROUP BY __changelake_part
), n AS (
    SELECT __changelake_part AS p, count(*) AS n,
           sum(hash(*COLUMNS(* EXCLUDE (__changelake_part)))::HUGEINT) AS h
    FROM new_rows GROUP BY __changelake_part
)
SELECT coalesce(o.p, n.p) FROM o FULL JOIN n ON o.p IS NOT DISTINCT FROM n.p
WHERE o.n IS DISTINCT FROM n.n OR o.h IS DISTINCT FROM n.h
"""


@dataclass(frozen=True)
class Partitioning:
    """One partition field: ``transform`` of column ``column``."""

    column: str
    transform: Transform

    @property
    def kind(self) -> str:
        return "bucket" if isinstance(self.transform, BucketTransform) else "trunc"


def current(table: Table) -> Partitioning | None:
    """The partitioning of ``table``'s current spec (None: unpartitioned)."""
    return _of(table.spec(), table.schema())


def _of(spec: PartitionSpec, schema: Schema) -> Partitioning | None:
    if not spec.fields:
        return None
    field = spec.fields[0]
    return Partitioning(schema.find_field(field.source_id).name, field.transform)


def nice_width(raw: float) -> int:
    """The smallest of 1, 2, 5 x 10^k that is at least ``raw`` (readable range bounds)."""
    if raw <= 1:
        return 1
    exp = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * exp >= raw:
            return int(step * exp)
    return int(10 * exp)


def choose(
    table: Table, key: list[str] | None, rows: pa.Table, target_bytes: int
) -> Partitioning | None:
    """The partitioning ``table`` should have for the state ``rows`` (often its current one)."""
    now = current(table)
    if not key or key[0] not in rows.column_names:
        return None
    column = key[0]
    n = rows.num_rows
    per_row = max(rows.nbytes // max(n, 1), 1)
    row_target = max(target_bytes // per_row, 1)
    if n < 2 * row_target:
        return now if now is not None and now.column == column else None
    field_type: IcebergType = table.schema().find_field(column).field_type
    if isinstance(field_type, IntegerType | LongType):
        if now is not None and now.column == column and now.kind == "trunc":
            return now
        lo, hi = pc.min_max(rows[column]).values()
        if lo.as_py() is None:
            return now
        span = hi.as_py() - lo.as_py() + 1
        return Partitioning(column, TruncateTransform(nice_width(span * row_target / n)))
    if isinstance(field_type, BUCKETABLE):
        if now is not None and now.column == column and now.kind == "bucket":
            buckets = now.transform.num_buckets
            if buckets >= MAX_BUCKETS or n <= 4 * row_target * buckets:
                return now
        wanted = min(MAX_BUCKETS, 2 ** math.ceil(math.log2(math.ceil(n / row_target))))
        return Partitioning(column, BucketTransform(wanted))
    return now if now is not None and now.column == column else None


def apply(table: Table, want: Partitioning | None) -> bool:
    """Give ``table`` the partitioning ``want``; True when its spec changed (the next commit
    must rewrite every data file, written under the old spec)."""

    def step() -> bool:
        if current(table) == want:
            return False
        names = set(table.schema().column_names)
        with table.update_spec() as update:
            for field in table.spec().fields:
                update.remove_field(field.name)
            if want is not None:
                name = f"{want.column}_{want.kind}"
                while name in names:
                    name += "_p"
                update.add_field(want.column, want.transform, name)
        return True

    return retry_on_conflict(table, step)


def partition_values(table: Table, rows: pa.Table) -> pa.Array | None:
    """Each row's partition value under ``table``'s current spec (None: unpartitioned)."""
    now = current(table)
    if now is None:
        return None
    source = table.schema().find_field(now.column).field_type
    return now.transform.pyarrow_transform(source)(rows[now.column].combine_chunks())


def changed(old: pa.Table, old_parts: pa.Array, new: pa.Table, new_parts: pa.Array) -> list | None:
    """Partition values whose rows differ between the states ``old`` and ``new`` (None: not
    comparable, rewrite everything)."""
    if not old.schema.equals(new.schema, check_metadata=False):
        return None
    con = duckdb.connect()
    try:
        con.register("old_rows", old.append_column(PART, old_parts))
        con.register("new_rows", new.append_column(PART, new_parts))
        return [r[0] for r in con.execute(DIFF_SQL).fetchall()]
    except duckdb.Error:
        return None  # a type DuckDB cannot hash: compare nothing, rewrite everything
    finally:
        con.close()


def rows_in(rows: pa.Table, parts: pa.Array, values: list) -> pa.Table:
    """The rows of ``rows`` whose partition value is one of ``values``."""
    present = [v for v in values if v is not None]
    mask = pc.is_in(parts, value_set=pa.array(present, type=parts.type))
    if len(present) < len(values):
        mask = pc.or_(mask, pc.is_null(parts))
    return rows.filter(pc.fill_null(mask, False))


def range_predicate(table: Table, values: list) -> str | None:
    """A SQL predicate selecting the rows of the ``truncate`` partitions ``values`` of
    ``table``'s current spec (adjacent ones merged into one range), which DuckDB prunes data
    files with; None when the spec is not a truncate of an integer key or a value is NULL."""
    now = current(table)
    if now is None or now.kind != "trunc" or any(v is None for v in values):
        return None
    width = now.transform.width
    col = quote_ident(now.column)
    ranges: list[list[int]] = []
    for v in sorted(int(v) for v in set(values)):
        if ranges and ranges[-1][1] == v:
            ranges[-1][1] = v + width
        else:
            ranges.append([v, v + width])
    if not ranges:
        return "false"
    return " OR ".join(f"({col} >= {lo} AND {col} < {hi})" for lo, hi in ranges)
