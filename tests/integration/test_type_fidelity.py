"""Type fidelity through the real stack: the type zoo goes PostgreSQL -> Debezium -> Kafka ->
decode, and every column of every surviving row is compared with what PostgreSQL returns.

Known losses are Debezium's, not the decoder's, and are asserted as such (so a change in them
shows up): numeric NaN/Infinity arrive as NULL (decimal.handling.mode=precise), 2-D arrays
arrive as a list of NULLs, intervals are folded to microseconds with 365.25/12-day months.
"""

from __future__ import annotations

import importlib.util
import math
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from pipelines.decode import RawMessage, decode_batch
from pipelines.decode.types import DATE_INF, TS_INF
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = QualifiedName("zoo", "typezoo")
PRECISIONS = QualifiedName("zoo", "precisions")
MONTH_US = 365.25 / 12 * 86400 * 10**6


def _recorder():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(
        "record_debezium", FIXTURES / "record_debezium.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _consume(settings, topic: str, until, timeout: float = 120) -> list[RawMessage]:  # noqa: ANN001
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while not consumer.partitions_for_topic(topic):
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            time.sleep(0.5)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[RawMessage] = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                out += [RawMessage(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                        for r in batch]  # fmt: skip
            if until(out):
                return out
        raise AssertionError(f"incomplete after {timeout}s: {len(out)} messages")
    finally:
        consumer.close()


def _replay(table: pa.Table) -> dict[int, dict]:
    """Latest row per id, unchanged-TOAST columns carried over from the previous version."""
    state: dict[int, dict] = {}
    raw = table.drop_columns(["_before"])
    for f in raw.schema:  # sentinels are past Python's datetime range: keep them as ints
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            i = raw.schema.get_field_index(f.name)
            ints = pa.int32() if pa.types.is_date32(f.type) else pa.int64()
            raw = raw.set_column(i, f.name, raw[f.name].cast(ints))
    for row in raw.to_pylist():
        if row["_op"] == "d":
            state.pop(row["id"], None)
            continue
        prev = state.get(row["id"], {})
        for col in row["_unavailable"]:
            row[col] = prev[col]
        state[row["id"]] = row
    return state


def _us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _pg_rows(conn) -> dict[int, dict]:  # noqa: ANN001
    """PostgreSQL's view of every row, with text forms where Python has no exact type."""
    cur = conn.execute(
        """SELECT t.*, c_money::numeric AS money_n, c_int4range::text AS r1, c_tsrange::text AS r2,
                  c_daterange::text AS r3, c_tsvector::text AS tsv, c_ltree::text AS lt,
                  c_pair::text AS pair, hstore_to_json(c_hstore)::text AS hs,
                  c_bit1::text AS b1, c_bit8::text AS b8, c_varbit::text AS vb,
                  c_point[0] AS px, c_point[1] AS py, c_timetz::text AS ttz,
                  (extract(year FROM c_interval) * 12 + extract(month FROM c_interval))::bigint AS iv_m,
                  extract(day FROM c_interval)::bigint AS iv_d,
                  (extract(epoch FROM c_interval - date_trunc('day', c_interval)) * 1000000)::bigint AS iv_us,
                  c_numeric::text AS num_txt, c_numeric_fixed::text AS fix_txt
           FROM (SELECT id, c_smallint, c_integer, c_bigint, c_real, c_double,
                        CASE WHEN c_numeric_fixed::text <> 'NaN' THEN c_numeric_fixed END AS c_numeric_fixed,
                        c_numeric_wide, c_numeric, c_money, c_bool, c_char, c_varchar, c_text,
                        c_bytea, c_time, c_time3, c_timetz, c_interval, c_json::text AS c_json,
                        c_jsonb::text AS c_jsonb, c_xml::text AS c_xml, c_uuid::text AS c_uuid,
                        c_inet::text AS c_inet, c_cidr::text AS c_cidr, c_macaddr::text AS c_macaddr,
                        c_macaddr8::text AS c_macaddr8, c_bit1, c_bit8, c_varbit,
                        c_mood::text AS c_mood, c_int_array, c_text_array, c_numeric_array,
                        c_int_matrix, c_int4range, c_tsrange, c_daterange, c_point, c_tsvector,
                        c_oid::bigint AS c_oid, c_hstore, c_ltree, c_pair, c_big_text,
                        c_big_jsonb::text AS c_big_jsonb,
                        c_date::text AS d_txt, c_timestamp::text AS ts_txt,
                        c_timestamptz::text AS tz_txt,
                        CASE WHEN isfinite(c_date) THEN c_date END AS c_date,
                        CASE WHEN isfinite(c_timestamp) THEN c_timestamp END AS c_timestamp,
                        CASE WHEN isfinite(c_timestamptz) THEN c_timestamptz END AS c_timestamptz
                 FROM zoo.typezoo) t"""  # noqa: S608 -- constant SQL
    )
    names = [d.name for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _expect_temporal(txt: str | None, inf: tuple[int, int], finite) -> object:  # noqa: ANN001
    if txt is None:
        return None
    if txt == "infinity":
        return inf[0]
    if txt == "-infinity":
        return inf[1]
    return finite()


@pytest.fixture(scope="module")
def zoo(stack):  # noqa: ANN001, ANN201
    """typezoo.sql's setup captured (typezoo and precisions) and its changes applied, once."""
    rec = _recorder()
    sql = rec.sections()
    # named before they exist, so the event trigger publishes them at CREATE and every row is
    # streamed (this test is about the stream's types; an incremental snapshot is not involved)
    stack.capture("", str(TABLE), str(PRECISIONS))
    with stack.pg() as conn:
        rec.run_section(conn, sql["setup"])
    with stack.pg() as conn:
        rec.run_section(conn, sql["changes"])
    return rec


def test_type_zoo_round_trips_through_the_real_stack(stack, zoo) -> None:  # noqa: ANN001
    sql = zoo.sections()
    every_type = next(s for s in zoo.statements(sql["changes"]) if s.startswith(
        "INSERT INTO zoo.typezoo VALUES"))  # fmt: skip
    with stack.pg() as conn:
        # bring the every-type row back (the changes end by deleting it), then update it
        # without touching the toasted columns, so the comparison covers TOAST carry-over too
        conn.execute(every_type)
        conn.execute("UPDATE zoo.typezoo SET c_smallint = 1 WHERE id = 10")
        pg = _pg_rows(conn)
    settings = stack.settings
    topic = stack.topic(TABLE)

    def done(msgs: list[RawMessage]) -> bool:  # the last change: the 3rd update of id 10
        key = b'{"id":10}'
        return sum(1 for m in msgs if m.value and b'"op":"u"' in m.value and m.key
                   and m.key.endswith(b'"payload":' + key + b"}")) >= 3  # fmt: skip

    msgs = _consume(settings, topic, done)
    b = decode_batch(msgs, ingested_at=datetime.now(UTC), topic_prefix=settings.topic_prefix)
    assert b.quarantine.num_rows == 0, b.quarantine.column("error").to_pylist()
    got = _replay(b.tables[TABLE])
    # rows inserted before capture arrive only as incremental-snapshot reads; row 1 is
    # updated (full after-image) by the changes, so every row PostgreSQL has is in the stream
    streamed = set(pg)
    assert streamed == {1, 10, 11, 12, 13, 14}
    assert set(got) == streamed, (set(got), set(pg))
    # the newest streamed change (incremental-snapshot reads of the rows that predate the
    # capture may arrive after it)
    events = b.tables[TABLE].select(["id", "_unavailable", "_snapshot"]).to_pylist()
    last = [e for e in events if e["_snapshot"] != "incremental"][-1]
    assert last["id"] == 10 and sorted(last["_unavailable"]) == ["c_big_jsonb", "c_big_text"]
    for id_ in sorted(streamed):
        _compare_row(pg[id_], got[id_])


def _compare_row(p: dict, g: dict) -> None:  # noqa: C901 -- one assertion per type, flat on purpose
    rid = p["id"]
    same = ["c_smallint", "c_integer", "c_bigint", "c_bool", "c_char", "c_varchar", "c_text",
            "c_xml", "c_uuid", "c_inet", "c_cidr", "c_macaddr", "c_macaddr8", "c_mood",
            "c_int_array", "c_text_array", "c_numeric_array", "c_oid", "c_big_text",
            "c_time", "c_time3"]  # fmt: skip
    for col in same:
        assert g[col] == p[col], (rid, col, g[col], p[col])
    for col in ("c_real", "c_double"):
        if p[col] is not None and math.isnan(p[col]):
            assert math.isnan(g[col]), (rid, col)
        else:
            assert g[col] == p[col], (rid, col, g[col], p[col])
    assert g["c_bytea"] == (None if p["c_bytea"] is None else bytes(p["c_bytea"])), rid
    # numerics: exact; NaN/+-Infinity are NULL from Debezium (precise mode cannot carry them)
    for col, txt in (("c_numeric", "num_txt"), ("c_numeric_fixed", "fix_txt")):
        if p[txt] in ("NaN", "Infinity", "-Infinity"):
            assert g[col] is None, (rid, col, "Debezium sends NULL for numeric specials")
        elif p[txt] is None:
            assert g[col] is None
        else:
            assert Decimal(str(g[col])) == Decimal(p[txt]), (rid, col, g[col], p[txt])
    # numeric(50, 10): past DuckDB's 38 digits, so exact plain text
    wide = p["c_numeric_wide"]
    assert g["c_numeric_wide"] == (None if wide is None else format(wide, "f")), rid
    assert g["c_money"] == p["money_n"], (rid, g["c_money"], p["money_n"])
    for col in ("c_json", "c_jsonb", "c_big_jsonb"):
        expect = None if p[col] is None else orjson.loads(p[col])
        assert (None if g[col] is None else orjson.loads(g[col])) == expect, (rid, col)
    assert (None if g["c_hstore"] is None else orjson.loads(g["c_hstore"])) == (
        None if p["hs"] is None else orjson.loads(p["hs"])
    )
    for col, txt in (("c_int4range", "r1"), ("c_tsrange", "r2"), ("c_daterange", "r3"),
                     ("c_tsvector", "tsv"), ("c_ltree", "lt")):  # fmt: skip
        assert g[col] == p[txt], (rid, col, g[col], p[txt])
    assert (None if g["c_pair"] is None else g["c_pair"].decode()) == p["pair"]
    # bits: Debezium's bytes are the bit string as a little-endian unsigned number
    assert g["c_bit1"] == (None if p["b1"] is None else p["b1"] == "1")
    for col, txt in (("c_bit8", "b8"), ("c_varbit", "vb")):
        want = None if p[txt] is None else int(p[txt], 2)
        assert (None if g[col] is None else int.from_bytes(g[col], "little")) == want, (rid, col)
    if p["px"] is None:
        assert g["c_point"] is None
    else:
        assert (g["c_point"]["x"], g["c_point"]["y"]) == (p["px"], p["py"])
    # 2-D arrays: Debezium cannot carry them; it sends one NULL per outer element
    if p["c_int_matrix"] is not None:
        assert g["c_int_matrix"] == [None] * len(p["c_int_matrix"])
    # temporal: exact, with +/-infinity as DuckDB's sentinels
    assert g["c_date"] == _expect_temporal(
        p["d_txt"], DATE_INF, lambda: (p["c_date"] - date(1970, 1, 1)).days
    ), rid
    assert g["c_timestamp"] == _expect_temporal(
        p["ts_txt"], TS_INF, lambda: _us(p["c_timestamp"])
    ), rid
    assert g["c_timestamptz"] == _expect_temporal(
        p["tz_txt"], TS_INF, lambda: _us(p["c_timestamptz"])
    ), rid
    if p["c_timetz"] is None:
        assert g["c_timetz"] is None
    else:
        t = p["c_timetz"]
        utc = (datetime.combine(date(2000, 1, 1), t.replace(tzinfo=None)) - t.utcoffset()).time()
        assert g["c_timetz"] == utc.strftime("%H:%M:%S.%f") + "Z", (rid, g["c_timetz"], t)
    if p["c_interval"] is None:
        assert g["c_interval"] is None
    else:
        want = round(p["iv_m"] * MONTH_US) + p["iv_d"] * 86400 * 10**6 + p["iv_us"]
        assert g["c_interval"] == timedelta(microseconds=want), (rid, g["c_interval"], want)


# --- zoo.precisions: every typmod, landed and compacted, read back through DuckDB -------------

P7 = [*(str(p) for p in range(7)), ""]  # time(0)..time(6) and time without typmod
_MONTH_US = 2629800000000  # Debezium's MicroDuration month: 365.25/12 days


def _precision_columns() -> list[tuple[str, str, str]]:
    """(column, PostgreSQL expression, DuckDB expression), both giving one exact text."""
    out = []
    for c in (f"t{p}" for p in P7):
        out.append((c, f"(extract(epoch FROM {c}) * 1000000)::bigint::text",
                    f"((hour({c})::BIGINT * 3600 + minute({c}) * 60) * 1000000 "
                    f"+ microsecond({c}))::VARCHAR"))  # fmt: skip
    for c in (f"tz{p}" for p in P7):  # ZonedTime is UTC text; Debezium sends 24:00:00 as 00:00
        utc = f"({c} AT TIME ZONE 'UTC')::time"
        out.append((c, f"CASE WHEN {utc} = '24:00:00' THEN '00:00:00' ELSE {utc}::text END || 'Z'",
                    c))  # fmt: skip
    for c in [*(f"ts{p}" for p in P7), *(f"tstz{p}" for p in P7)]:
        out.append((c, f"CASE WHEN isfinite({c}) THEN (extract(epoch FROM {c}) * 1000000)"
                       f"::bigint::text ELSE {c}::text END",
                    f"CASE WHEN isinf({c}) THEN {c}::VARCHAR ELSE epoch_us({c})::VARCHAR END"))  # fmt: skip
    out.append(("d", "CASE WHEN isfinite(d) THEN (d - DATE '1970-01-01')::text ELSE d::text END",
                "CASE WHEN isinf(d) THEN d::VARCHAR ELSE (d - DATE '1970-01-01')::VARCHAR END"))  # fmt: skip
    for c in [*(f"iv{p}" for p in P7), "iv_ym", "iv_ds3", "iv_hm"]:  # duration: BIGINT in DuckDB
        out.append((c, f"((extract(year FROM {c}) * 12 + extract(month FROM {c})) * {_MONTH_US}"
                       f" + extract(day FROM {c}) * 86400000000 + extract(hour FROM {c})"
                       f" * 3600000000 + extract(minute FROM {c}) * 60000000"
                       f" + extract(microsecond FROM {c}))::bigint::text",
                    f"{c}::VARCHAR"))  # fmt: skip
    for c in ("n39", "n50", "n76", "n77", "n1000", "n50_a"):  # exact text, as PostgreSQL prints
        out.append((c, f"{c}::text[]" if c.endswith("_a") else f"{c}::text", c))
    return out


def test_every_precision_is_exact_through_duckdb(stack, zoo, tmp_path: Path) -> None:  # noqa: ANN001
    from pipelines import silver
    from pipelines.bronze.lander import land
    from pipelines.config import Settings
    from pipelines.shop.demo import wait_until_streamed

    fields = stack.settings.model_dump()
    fields.update(lake=tmp_path / "lake", tables=(str(PRECISIONS),))
    settings = Settings(**fields)
    wait_until_streamed(settings)
    land(settings, until_caught_up=True)
    silver.compact_all(settings)
    cols = _precision_columns()
    with stack.pg() as conn:  # rows 1 and 2 predate the capture: not streamed
        rows = conn.execute(
            f"SELECT id, {', '.join(pg for _, pg, _ in cols)}, n_neg, n_neg5 "  # noqa: S608
            "FROM zoo.precisions WHERE id >= 100"
        ).fetchall()
    pg = {r[0]: r[1:] for r in rows}
    assert set(pg) == {100, 101, 102, 103, 104, 105}
    duck = duckdb.connect(str(silver.catalog_path(settings)), read_only=True)
    try:
        types = dict(duck.execute("SELECT column_name, column_type FROM "
                                  "(DESCRIBE zoo.precisions)").fetchall())  # fmt: skip
        assert "DOUBLE" not in types.values(), types
        assert all(types[c] == "VARCHAR" for c in ("n39", "n50", "n76", "n77", "n1000", "n_neg"))
        sel = f"id, {', '.join(d for _, _, d in cols)}, n_neg, n_neg5"
        # rows 1 and 2 reach silver by the incremental snapshot of the capture; compared here are
        # the streamed rows
        paths = {"silver view": f"SELECT {sel} FROM zoo.precisions WHERE id >= 100"}  # noqa: S608
        for id_ in pg:  # the history macro reads the bronze change events themselves
            paths[f"bronze history {id_}"] = f"SELECT {sel} FROM zoo.history_precisions({id_})"  # noqa: S608
        for where, q in paths.items():
            for r in duck.execute(q).fetchall():
                want, got = pg[r[0]], r[1:]
                for (c, _, _), w, g in zip(cols, want[:-2], got[:-2], strict=True):
                    assert g == w, (where, r[0], c, g, w)
                # negative scale: Debezium reports the wrapped typmod scale (2048 + s), so the
                # text has extra zero decimals; the value is exact
                for w, g in zip(want[-2:], got[-2:], strict=True):
                    assert (None if g is None else Decimal(g)) == w, (where, r[0], g, w)
        assert {r[0] for r in duck.execute(paths["silver view"]).fetchall()} == set(pg)
    finally:
        duck.close()
