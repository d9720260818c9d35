"""The decoder against messages recorded from the real Debezium connector (typezoo.sql).

The recording is made by tests/fixtures/record_debezium.py; the expected values below are the
literals of tests/fixtures/typezoo.sql.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from pipelines.decode import DecodedBatch, RawMessage, decode_batch
from pipelines.decode.replay import read_jsonl
from pipelines.decode.types import DATE_INF, TS_INF
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"
PREFIX = "zoo"
INGESTED_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
TYPEZOO = QualifiedName("zoo", "typezoo")
KEYLESS = QualifiedName("zoo", "keyless")
EVOLVING = QualifiedName("zoo", "evolving")
PRECISIONS = QualifiedName("zoo", "precisions")


@cache
def recorded() -> tuple[RawMessage, ...]:
    return tuple(read_jsonl(RECORDED))


def decode(messages=None) -> DecodedBatch:  # noqa: ANN001
    msgs = recorded() if messages is None else messages
    return decode_batch(msgs, ingested_at=INGESTED_AT, topic_prefix=PREFIX)


@cache
def batch() -> DecodedBatch:
    return decode()


def _py(col: pa.ChunkedArray) -> list:
    """Python values; DuckDB's +/-infinity sentinels as '+inf'/'-inf' and other values past
    datetime's range (years before 1 or after 9999) as their raw int (days or epoch units)."""
    typ = col.type
    if not (pa.types.is_timestamp(typ) or pa.types.is_date(typ)):
        return col.to_pylist()
    raw = col.cast(pa.int32() if pa.types.is_date32(typ) else pa.int64())
    hi = DATE_INF[0] if pa.types.is_date32(typ) else TS_INF[0]
    inf = pa.compute.is_in(raw, pa.array([hi, -hi], raw.type))
    lo_ok, hi_ok = (pa.scalar(v, typ).cast(raw.type) for v in _PY_RANGE[pa.types.is_date(typ)])
    outside = pa.compute.or_(pa.compute.less(raw, lo_ok), pa.compute.greater(raw, hi_ok))
    vals = pa.compute.if_else(outside, pa.scalar(None, typ), col).to_pylist()
    for i, (flag, out, v) in enumerate(
        zip(inf.to_pylist(), outside.to_pylist(), raw.to_pylist(), strict=True)
    ):
        if flag:
            vals[i] = "+inf" if v > 0 else "-inf"
        elif out:
            vals[i] = v
    return vals


_PY_RANGE = {
    True: (date.min, date.max),
    False: (datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)),
}


def rows(table: QualifiedName, op: str | None = None, **where: object) -> list[dict]:
    """Rows of a decoded table as Python values, optionally filtered."""
    t = batch().tables[table].drop_columns(["_before"])
    cols = {name: _py(t[name]) for name in t.column_names}
    out = [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
    out = [r for r in out if (op is None or r["_op"] == op)]
    return [r for r in out if all(r[k] == v for k, v in where.items())]


def one(table: QualifiedName, op: str | None = None, **where: object) -> dict:
    found = rows(table, op, **where)
    assert len(found) == 1, found
    return found[0]


def us(dt: datetime) -> int:
    """Microseconds since the epoch of a naive (UTC) or aware datetime."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --- the whole recording -----------------------------------------------------------------------


def test_every_recorded_message_is_accounted_for() -> None:
    b = batch()
    msgs = recorded()
    assert b.quarantine.num_rows == 0, b.quarantine.column("error").to_pylist()
    assert b.heartbeats == sum(m.topic == f"__debezium-heartbeat.{PREFIX}" for m in msgs) > 0
    assert b.tombstones == sum(m.value is None for m in msgs) == 3
    tx = [m for m in msgs if m.topic == f"{PREFIX}.transaction"]
    assert b.transactions is not None and b.transactions.num_rows == len(tx)
    changes = [m for m in msgs if m.value is not None and m.topic.startswith(f"{PREFIX}.zoo.")]
    assert sum(t.num_rows for t in b.tables.values()) == len(changes)
    assert set(b.tables) == {TYPEZOO, KEYLESS, EVOLVING, PRECISIONS}


def test_table_metadata_carries_key_and_name() -> None:
    meta = {q: t.schema.metadata for q, t in batch().tables.items()}
    assert orjson.loads(meta[TYPEZOO][b"changelake.key"]) == ["id"]
    assert orjson.loads(meta[KEYLESS][b"changelake.key"]) == []
    assert meta[TYPEZOO][b"changelake.table"] == b"zoo.typezoo"


def test_metadata_columns() -> None:
    t = batch().tables[TYPEZOO]
    assert t.schema.field("_source_ts").type == pa.timestamp("us", "UTC")
    assert t.schema.field("_kafka_ts").type == pa.timestamp("ms", "UTC")
    assert t.schema.field("_partition").type == pa.int32()
    assert t.schema.field("_unavailable").type == pa.list_(pa.string())
    by_offset = {m.offset: orjson.loads(m.value)["payload"] for m in recorded()
                 if m.topic == "zoo.zoo.typezoo" and m.value}  # fmt: skip
    for r in rows(TYPEZOO):
        p = by_offset[r["_offset"]]
        src = p["source"]
        assert r["_op"] == p["op"]
        assert us(r["_source_ts"]) == src["ts_us"]
        assert r["_lsn"] == src["lsn"]
        first = orjson.loads(src["sequence"])[0]
        assert r["_commit_lsn"] == (None if first is None else int(first))
        assert r["_tx_id"] == src["txId"]
        assert r["_tx_order"] == (p["transaction"] or {}).get("total_order")
        assert r["_topic"] == "zoo.zoo.typezoo" and r["_partition"] == 0
        assert r["_ingested_at"] == INGESTED_AT
    snaps = rows(TYPEZOO, "r")
    assert [s["_snapshot"] for s in snaps] == ["first", "last_in_data_collection"]
    assert all(s["_tx_order"] is None for s in snaps)


def test_commit_lsn_is_constant_within_and_increasing_across_transactions() -> None:
    streamed = [r for q in batch().tables for r in rows(q) if r["_op"] != "r"]
    per_tx: dict[int, set] = {}
    for r in streamed:
        per_tx.setdefault(r["_tx_id"], set()).add(r["_commit_lsn"])
    assert all(len(v) == 1 for v in per_tx.values()), per_tx
    order = sorted((r["_lsn"], r["_tx_id"], r["_commit_lsn"]) for r in streamed)
    lsns = [c for _, _, c in order if c is not None]
    assert lsns == sorted(lsns)


# --- every type ---------------------------------------------------------------------------------


def test_every_type_ordinary_values() -> None:
    r = one(TYPEZOO, "c", id=10)
    assert (r["c_smallint"], r["c_integer"], r["c_bigint"]) == (32767, -(2**31), 2**63 - 1)
    assert r["c_real"] == 3.25 and r["c_double"] == -1.5e300
    assert r["c_numeric_fixed"] == Decimal("-1234567890123456789012345.12345")
    assert r["c_numeric_wide"] == "1234567890123456789012345678901234567890.0123456789"
    assert r["c_numeric"] == "-98765432109876543210.0123456789"
    assert r["c_money"] == Decimal("-92233720368547758.08")
    assert r["c_bool"] is True
    assert r["c_char"] == "ab   " and r["c_varchar"] == "varchar é ü 日本"
    assert r["c_text"] == 'line1\nline2\t"quoted" \\ back'
    assert r["c_bytea"] == b"\x00\xff\x10\xde\xad\xbe\xef"
    assert r["c_date"] == date(1969, 7, 20)
    assert r["c_time"] == time(23, 59, 59, 999999) and r["c_time3"] == time(12, 0, 0, 123000)
    assert r["c_timetz"] == "04:41:12.345678Z"  # ZonedTime: kept exact, as UTC text
    assert r["c_timestamp"] == datetime(1900, 1, 1, 0, 0, 0, 1)
    assert r["c_timestamp0"] == datetime(2024, 2, 29, 23, 59, 59)
    assert r["c_timestamptz"] == datetime(1955, 11, 5, 4, 15, 0, 500000, tzinfo=UTC)
    # MicroDuration: Debezium folds months as 365.25/12 days
    month = timedelta(days=365.25 / 12)
    assert r["c_interval"] == 14 * month + timedelta(days=3, hours=4, minutes=5, seconds=6.789)
    assert orjson.loads(r["c_json"]) == {"a": [1, 2.5, "x"], "b": None}
    assert orjson.loads(r["c_jsonb"]) == {"k": {"nested": True}, "n": 1000}
    assert r["c_xml"] == '<a b="c">text</a>'
    assert r["c_uuid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert (r["c_inet"], r["c_cidr"]) == ("192.168.1.5/24", "10.0.0.0/8")
    assert (r["c_macaddr"], r["c_macaddr8"]) == ("08:00:2b:01:02:03", "08:00:2b:01:02:03:04:05")
    assert r["c_bit1"] is True and r["c_bit8"] == b"\xa5" and r["c_varbit"] == b"\x0d"
    assert r["c_mood"] == "happy"
    assert r["c_int_array"] == [1, None, -3]
    assert r["c_text_array"] == ["a", "b,c", 'd"e', None]
    assert r["c_numeric_array"] == [Decimal("1.50"), Decimal("-2.25")]
    assert r["c_int_matrix"] == [None, None]  # Debezium cannot carry 2-D arrays (its limitation)
    assert r["c_int4range"] == "[1,10)" and r["c_daterange"] == "[2020-01-01,2020-02-01)"
    assert r["c_point"]["x"] == 1.5 and r["c_point"]["y"] == -2.25
    assert r["c_point"]["wkb"][:1] == b"\x01"  # WKB, little-endian
    assert r["c_tsvector"] == "'a' 'cat':1 'fat' 'sat'"
    assert r["c_oid"] == 4294967295
    assert orjson.loads(r["c_hstore"]) == {"k1": "v1", "k2": None}
    assert r["c_ltree"] == "top.mid.leaf"
    assert r["c_pair"] == b"(7,seven)"  # unknown type: Debezium's text form, as bytes
    assert len(r["c_big_text"]) == 300 * 32
    assert len(orjson.loads(r["c_big_jsonb"])) == 200
    assert r["_unavailable"] == []


def test_arrow_types_of_the_zoo() -> None:
    s = batch().tables[TYPEZOO].schema
    expect = {
        "c_smallint": pa.int16(), "c_real": pa.float32(), "c_double": pa.float64(),
        "c_numeric_fixed": pa.decimal128(30, 5), "c_numeric_wide": pa.string(),
        "c_numeric": pa.string(), "c_money": pa.decimal128(38, 2), "c_bytea": pa.binary(),
        "c_date": pa.date32(), "c_time": pa.time64("us"), "c_time3": pa.time64("us"),
        "c_timetz": pa.string(), "c_timestamp": pa.timestamp("us"),
        "c_timestamp0": pa.timestamp("ms"), "c_timestamptz": pa.timestamp("us", "UTC"),
        "c_interval": pa.duration("us"), "c_bit8": pa.binary(),
        "c_numeric_array": pa.list_(pa.decimal128(10, 2)), "c_int_array": pa.list_(pa.int32()),
    }  # fmt: skip
    for name, typ in expect.items():
        assert s.field(name).type == typ, name
    assert s.field("_before").type == pa.struct([f for f in s if not f.name.startswith("_")])


def test_nan_infinity_and_edges() -> None:
    r11 = one(TYPEZOO, "c", id=11)
    assert math.isnan(r11["c_real"]) and r11["c_double"] == math.inf
    # Debezium (decimal.handling.mode=precise) emits NULL for numeric NaN/Infinity
    assert r11["c_numeric"] is None and r11["c_numeric_fixed"] is None
    assert r11["c_int_array"] == [] and r11["c_text_array"] == []
    assert r11["c_interval"] == -timedelta(days=3, seconds=1)
    assert r11["c_jsonb"] == "[]" and r11["c_bytea"] == b"" and r11["c_text"] == ""
    assert r11["c_money"] == Decimal("0.00")
    r12 = one(TYPEZOO, "c", id=12)
    assert r12["c_real"] == -math.inf and r12["c_double"] == -math.inf
    assert r12["c_numeric_fixed"] == Decimal("-0.00001")
    assert r12["c_numeric_wide"] == "-0.0000000001"
    assert r12["c_time"] == time(0, 0)
    assert (r11["c_date"], r12["c_date"]) == ("+inf", "-inf")
    assert (r11["c_timestamp"], r12["c_timestamp"]) == ("+inf", "-inf")
    assert (r11["c_timestamptz"], r12["c_timestamptz"]) == ("+inf", "-inf")
    r13 = one(TYPEZOO, "c", id=13)
    assert r13["c_date"] == date(1, 1, 1)
    assert r13["c_timestamp"] == datetime(1, 1, 1)
    assert r13["c_timestamptz"] == datetime(1, 1, 1, tzinfo=UTC)
    r14 = one(TYPEZOO, "c", id=14)
    assert r14["c_numeric"] == "0.000000000000000000000000000001"
    assert r14["c_timestamp"] == datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert r14["c_timestamptz"] == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_infinity_dates_and_timestamps_become_duckdb_sentinels() -> None:
    t = batch().tables[TYPEZOO]
    ids = t["id"].to_pylist()
    days = dict(zip(ids, t["c_date"].cast(pa.int32()).to_pylist(), strict=True))
    ts = dict(zip(ids, t["c_timestamp"].cast(pa.int64()).to_pylist(), strict=True))
    tstz = dict(zip(ids, t["c_timestamptz"].cast(pa.int64()).to_pylist(), strict=True))
    assert (days[11], days[12]) == DATE_INF == (2**31 - 1, -(2**31 - 1))
    assert (ts[11], ts[12]) == TS_INF == (2**63 - 1, -(2**63 - 1))
    assert (tstz[11], tstz[12]) == TS_INF
    warned = " ".join(batch().warnings)
    for col in ("c_date", "c_timestamp", "c_timestamptz"):
        assert f"'{col}': +/-infinity" in warned


def test_infinity_sentinels_read_back_as_infinity_in_duckdb(tmp_path: Path) -> None:
    import duckdb
    import pyarrow.parquet as pq

    t = batch().tables[TYPEZOO].select(["id", "c_date", "c_timestamp", "c_timestamptz"])
    pq.write_table(t, tmp_path / "t.parquet")
    con = duckdb.connect()
    got = con.execute(
        "SELECT id, isinf(c_date), c_date > DATE '9999-01-01', isinf(c_timestamp), "
        "isinf(c_timestamptz) FROM read_parquet(?) WHERE id IN (11, 12) ORDER BY id",
        [str(tmp_path / "t.parquet")],
    ).fetchall()
    con.close()
    assert got == [(11, True, True, True, True), (12, True, False, True, True)]


def test_snapshot_rows_and_nulls() -> None:
    r1 = one(TYPEZOO, "r", id=1)
    assert r1["c_numeric_fixed"] == Decimal("12345.67891") and r1["c_date"] == date(2020, 2, 29)
    assert r1["c_timestamptz"] == datetime(2020, 2, 29, 12, 34, 56, 789012, tzinfo=UTC)
    assert r1["c_int_array"] == [1, 2, 3]
    r2 = one(TYPEZOO, "r", id=2)
    source = [k for k in r2 if not k.startswith("_") and k != "id"]
    assert all(r2[k] is None for k in source)


# --- updates, TOAST, deletes, truncate ----------------------------------------------------------


def test_unchanged_toast_is_null_and_listed() -> None:
    first, second = rows(TYPEZOO, "u", id=10)
    assert first["c_integer"] == 43
    assert first["c_big_text"] is None and first["c_big_jsonb"] is None
    assert sorted(first["_unavailable"]) == ["c_big_jsonb", "c_big_text"]
    assert second["c_big_text"] == "small now" and second["c_big_jsonb"] is None
    assert second["_unavailable"] == ["c_big_jsonb"]
    assert first["c_varchar"] == "varchar é ü 日本"  # untoasted columns come through


def test_deletes_take_the_before_image() -> None:
    d = one(TYPEZOO, "d", id=10)  # REPLICA IDENTITY DEFAULT: only the key
    assert d["c_integer"] is None
    before = batch().tables[TYPEZOO].filter(pa.compute.equal(batch().tables[TYPEZOO]["_op"], "d"))
    assert before["_before"].to_pylist()[0]["id"] in (2, 10)
    k = one(KEYLESS, "d")  # REPLICA IDENTITY FULL: the whole old row
    assert (k["note"], k["n"]) == (None, None)


def test_before_image_with_replica_identity_full() -> None:
    t = batch().tables[KEYLESS]
    upd = t.filter(pa.compute.equal(t["_op"], "u")).to_pylist()[0]
    assert (upd["note"], upd["n"]) == ("tx", 3)
    assert upd["_before"] == {"note": "tx", "n": 2}
    ins = t.filter(pa.compute.equal(t["_op"], "c")).to_pylist()[0]
    assert ins["_before"] is None


def test_truncate_is_one_row_without_values() -> None:
    tr = one(KEYLESS, "t")
    assert tr["note"] is None and tr["n"] is None and tr["_lsn"] is not None


def test_transaction_metadata() -> None:
    tx = batch().transactions.to_pylist()
    assert {r["status"] for r in tx} == {"BEGIN", "END"}
    multi = [r for r in tx if r["status"] == "END" and r["event_count"] == 5]
    assert len(multi) == 1
    colls = {c["data_collection"]: c["event_count"] for c in multi[0]["data_collections"]}
    assert colls == {"zoo.typezoo": 1, "zoo.keyless": 4}
    assert all(r["event_count"] is None for r in tx if r["status"] == "BEGIN")
    assert all(r["_topic"] == "zoo.transaction" for r in tx)


def test_schema_change_mid_stream_is_unioned() -> None:
    t = batch().tables[EVOLVING]
    assert t.column_names[:3] == ["id", "v", "extra"]
    got = {r["id"]: (r["v"], r["extra"]) for r in t.to_pylist()}
    # int -> bigint -> text: the text step is incompatible, so v is text throughout
    assert got == {1: ("10", None), 2: ("20", None), 3: ("30", "three"),
                   4: ("9000000000", "four"), 5: ("five", "five")}  # fmt: skip
    assert t.schema.field("v").type == pa.string()
    assert any("incompatible type change" in w and "'v'" in w for w in batch().warnings)
    assert t["_offset"].to_pylist() == sorted(t["_offset"].to_pylist())


def test_widening_alone_promotes_without_warning() -> None:
    msgs = [m for m in recorded() if m.topic == "zoo.zoo.evolving" and m.offset <= 3]
    b = decode(msgs)
    t = b.tables[EVOLVING]
    assert t.schema.field("v").type == pa.int64()
    assert t["v"].to_pylist() == [10, 20, 30, 9000000000]
    assert t["extra"].to_pylist() == [None, None, "three", "four"]
    assert not any("incompatible" in w for w in b.warnings)
