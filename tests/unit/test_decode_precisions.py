"""Every precision/typmod of the time types and numerics wider than DuckDB's 38 digits
(``zoo.precisions`` in tests/fixtures/typezoo.sql), decoded from the real recording and read
back through DuckDB from a Parquet file written by the bronze writer.

Rows: 1/2 are +/-infinity snapshot reads, 100 ordinary, 101 before 1970 / negative,
102 +infinity and 24:00:00, 103 -infinity, 104 the oldest values (4713 BC), 105 all NULL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.bronze.writer import write_file
from pipelines.decode import DecodedBatch, decode_batch
from pipelines.decode.replay import read_jsonl
from pipelines.decode.types import DATE_INF, TS_INF
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"
PRECISIONS = QualifiedName("zoo", "precisions")
P = range(7)
TIMES = [f"t{p}" for p in P] + ["t"]
TIMETZS = [f"tz{p}" for p in P] + ["tz"]
STAMPS = [f"ts{p}" for p in P] + ["ts"]
ZONED = [f"tstz{p}" for p in P] + ["tstz"]
INTERVALS = [f"iv{p}" for p in P] + ["iv", "iv_ym", "iv_ds3", "iv_hm"]
WIDE = ["n39", "n50", "n76", "n77", "n1000", "n_neg", "n_neg5"]


@cache
def batch() -> DecodedBatch:
    msgs = [m for m in read_jsonl(RECORDED) if m.topic in ("zoo.zoo.precisions", "zoo.transaction")]
    return decode_batch(msgs, ingested_at=datetime.now(UTC), topic_prefix="zoo")


def table() -> pa.Table:
    return batch().tables[PRECISIONS]


@cache
def duck(tmp: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the decoded rows as view ``p``, read from Parquet."""
    path = Path(tmp) / "p.parquet"
    write_file(path, table().drop_columns(["_before"]))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW p AS SELECT * FROM read_parquet('{path}')")  # noqa: S608
    return con


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duck(str(tmp_path))


def test_nothing_quarantined_and_every_row_present() -> None:
    assert batch().quarantine.num_rows == 0, batch().quarantine.column("error").to_pylist()
    assert sorted(table()["id"].to_pylist()) == [1, 2, 100, 101, 102, 103, 104, 105]


def test_arrow_types_per_precision() -> None:
    s = table().schema
    for c in TIMES:
        assert s.field(c).type == pa.time64("us"), c
    for c in TIMETZS:
        assert s.field(c).type == pa.string(), c
    for c in STAMPS:  # adaptive time.precision.mode: ms for 0-3 digits, us for 4-6
        unit = "ms" if c[-1] in "0123" else "us"
        assert s.field(c).type == pa.timestamp(unit), c
    for c in ZONED:
        assert s.field(c).type == pa.timestamp("us", "UTC"), c
    for c in INTERVALS:
        assert s.field(c).type == pa.duration("us"), c
    assert s.field("d").type == pa.date32()
    for c in WIDE:  # DuckDB would read a Parquet decimal past 38 digits as DOUBLE
        assert s.field(c).type == pa.string(), c
    assert s.field("n50_a").type == pa.list_(pa.string())


def test_infinity_at_every_precision_streamed_and_snapshot() -> None:
    t = table()
    ids = t["id"].to_pylist()
    for col in [*STAMPS, *ZONED, "d"]:
        raw = t[col].cast(pa.int32() if col == "d" else pa.int64()).to_pylist()
        got = dict(zip(ids, raw, strict=True))
        inf = DATE_INF if col == "d" else TS_INF
        for plus, minus in ((1, 2), (102, 103)):  # snapshot (JDBC) and streamed (pgoutput)
            assert (got[plus], got[minus]) == inf, (col, plus, got[plus], got[minus])
        assert f"'{col}': +/-infinity" in " ".join(batch().warnings), col


def test_duckdb_reads_infinity_at_every_precision(con: duckdb.DuckDBPyConnection) -> None:
    cols = [*STAMPS, *ZONED, "d"]
    sel = ", ".join(f"{c}::VARCHAR" for c in cols)
    sql = f"SELECT id, {sel} FROM p WHERE id IN (1, 2, 102, 103) ORDER BY id"  # noqa: S608
    rows = con.execute(sql).fetchall()
    for row in rows:
        want = "infinity" if row[0] in (1, 102) else "-infinity"
        assert list(row[1:]) == [want] * len(cols), row
    flags = con.execute(
        f"SELECT bool_and(isinf({') AND isinf('.join(cols)})) FROM p WHERE id IN (1, 2, 102, 103)"  # noqa: S608
    ).fetchone()
    assert flags == (True,)


def test_duckdb_values_per_precision(con: duckdb.DuckDBPyConnection) -> None:
    def col(c: str, id_: int) -> object:
        return con.execute(f"SELECT {c}::VARCHAR FROM p WHERE id = ?", [id_]).fetchone()[0]  # noqa: S608

    fracs = ["", ".1", ".12", ".123", ".1235", ".12346", ".123456", ".123456"]
    for c, f in zip(TIMES, fracs, strict=True):
        assert col(c, 100) == "12:34:56" + f, c
        assert col(c, 102) == "24:00:00", c
    for c, f in zip(STAMPS, fracs, strict=True):
        assert col(c, 100) == "2024-02-29 12:34:56" + f, c
        assert col(c, 104) == "4713-01-01 (BC) 00:00:00", c
    neg = ["59", "59.1", "59.12", "59.123", "59.1235", "59.12346", "59.123456", "59.123456"]
    for c, f in zip(STAMPS, neg, strict=True):  # negative epoch values with a fraction
        assert col(c, 101) == "1969-12-31 23:59:" + f, c
    old = ["53", "52.7", "52.65", "52.654", "52.6543", "52.65432", "52.654321", "52.654321"]
    for c, f in zip(ZONED, old, strict=True):
        assert col(c, 100) == "2024-02-29 07:04:56" + fracs[ZONED.index(c)] + "+00", c
        assert col(c, 101) == "1901-12-13 20:45:" + f + "+00", c
        assert col(c, 104) == "4713-01-01 (BC) 00:00:00+00", c
    assert col("d", 104) == "4713-01-01 (BC)" and col("d", 101) == "1969-12-31"
    for c, f in zip(TIMETZS, fracs, strict=True):  # ZonedTime: Debezium's UTC text
        assert col(c, 100) == "07:04:56" + f + "Z", c
    nulls = con.execute(f"SELECT {', '.join(TIMES + STAMPS + ZONED + WIDE)} FROM p WHERE id = 105")  # noqa: S608
    assert set(nulls.fetchone()) == {None}


def test_wide_numerics_exact_through_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE p)").fetchall())
    assert {c: types[c] for c in WIDE} == dict.fromkeys(WIDE, "VARCHAR")
    assert types["n50_a"] == "VARCHAR[]"
    wide = ", ".join(WIDE)
    sql = f"SELECT {wide} FROM p WHERE id = 100"  # noqa: S608
    got = dict(zip(WIDE, con.execute(sql).fetchone(), strict=True))
    assert got["n39"] == "123456789012345678901234567890123456789"
    assert got["n50"] == "1234567890123456789012345678901234567890.0123456789"
    assert got["n76"] == (
        "12345678901234567890123456789012345678.12345678901234567890123456789012345678"
    )
    assert got["n77"] == "1234567890" * 7 + "12345.67"
    assert got["n1000"] == "9" * 500 + "." + "9" * 500
    # a negative scale: Debezium reports PostgreSQL's wrapped typmod scale (2048 - 3), so the
    # text carries that many zero decimals; the value is still exact
    assert Decimal(got["n_neg"]) == Decimal("1234567890123456789012345678901234567890000")
    assert Decimal(got["n_neg5"]) == 12300
    low = con.execute(f"SELECT {', '.join(WIDE)} FROM p WHERE id = 101").fetchone()  # noqa: S608
    assert low[:5] == (
        "-" + "9" * 39,
        "-0.0000000001",
        "-" + "9" * 38 + "." + "9" * 38,
        "-1.05",
        "-0." + "0" * 499 + "1",
    )
    assert (Decimal(low[5]), Decimal(low[6])) == (-2000, -100)
    arr = con.execute("SELECT n50_a FROM p WHERE id = 100").fetchone()[0]
    assert arr == ["1.5000000000", "-2.2500000000", None,
                   "1234567890123456789012345678901234567890.0123456789"]  # fmt: skip
