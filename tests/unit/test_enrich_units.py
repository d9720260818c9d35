"""Event notification pieces that need no service: the token bucket, thin-event parsing with
quarantine, the backoff rule, the connector's message prefix, and the API's input checks
(served for real by uvicorn; no request here reaches PostgreSQL)."""

from __future__ import annotations

import base64
import math
import re
import time
from datetime import UTC, datetime

import orjson
import pytest
import requests

from pipelines.config import Settings
from pipelines.contract import message_topic
from pipelines.decode import RawMessage
from pipelines.decode.special import Quarantine
from pipelines.enrich import thin
from pipelines.enrich.callbacks import BACKOFF_CAP_S, backoff_s
from pipelines.enrich.strategies import STRATEGIES, api_url
from pipelines.ratelimit import TokenBucket
from pipelines.shop.api import serving
from pipelines.shop.migrate import shop_ddl
from pipelines.stack.connector_config import NOTIFY_PREFIX, load_template, render

pytestmark = pytest.mark.unit


def _msg(offset: int, body: object, prefix: str = NOTIFY_PREFIX, op: str = "m") -> RawMessage:
    content = base64.b64encode(orjson.dumps(body)).decode()
    value = {
        "schema": {},
        "payload": {
            "op": op,
            "ts_ms": 1_700_000_000_123,
            "source": {
                "ts_ms": 1_700_000_000_100,
                "ts_us": 1_700_000_000_100_123,
                "lsn": 4242,
                "txId": 777,
            },
            "message": {"prefix": prefix, "content": content},
        },
    }
    return RawMessage("changelake.message", 0, offset, 1, b"{}", orjson.dumps(value))


def test_token_bucket_lets_a_burst_through_then_paces() -> None:
    bucket = TokenBucket(rate=100.0, burst=3)
    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.try_take()
    assert 0 < wait <= 0.011
    t0 = time.monotonic()
    bucket.take()
    assert time.monotonic() - t0 >= wait * 0.5
    assert all(TokenBucket(0, 1).try_take() == 0.0 for _ in range(100))  # 0: unlimited
    with pytest.raises(ValueError):
        TokenBucket(1, 0)


def test_parse_keeps_good_events_and_quarantines_the_rest_with_raw_bytes() -> None:
    good = _msg(0, {"event": "OrderPlaced", "orderId": 789, "ts": 1_700_000_000_050})
    bad = [
        _msg(1, {"event": "OrderPlaced", "orderId": "789", "ts": 1}),  # id not an integer
        _msg(2, {"event": "OrderPlaced", "ts": 1}),  # no id
        _msg(3, {"event": "x", "orderId": 1, "ts": 1}, prefix="other"),
        _msg(4, {"event": "x", "orderId": 1, "ts": 1}, op="c"),
        RawMessage("changelake.message", 0, 5, 1, b"{}", b"not json"),
        RawMessage("changelake.message", 0, 6, 1, b"{}", None),
    ]
    q = Quarantine(datetime.now(UTC))
    events = thin.parse([good, *bad], q)
    assert events.schema == thin.THIN_SCHEMA
    row = events.to_pylist()[0]
    assert events.num_rows == 1 and row["order_id"] == 789 and row["tx_id"] == 777
    assert row["commit_ts"] == datetime.fromtimestamp(1_700_000_000, UTC).replace(
        microsecond=100_123
    )
    quarantined = q.table().to_pylist()
    assert [r["offset"] for r in quarantined] == [1, 2, 3, 4, 5, 6]
    assert quarantined[4]["value"] == b"not json"
    assert all(r["error"].startswith("malformed notification") for r in quarantined)
    with pytest.raises(ValueError, match="malformed"):
        thin.parse(bad[:1])  # no quarantine given: loud, never a silent drop


def test_backoff_grows_is_capped_and_honours_the_server() -> None:
    waits = [backoff_s(a) for a in range(12)]
    assert waits == sorted(waits) and waits[0] > 0 and waits[-1] == BACKOFF_CAP_S
    assert backoff_s(0, retry_after_s=2.5) == 2.5


def test_connector_streams_exactly_the_notify_prefix() -> None:
    settings = Settings(tables=())
    pattern = render(settings)["message.prefix.include.list"]
    assert pattern == load_template()["message.prefix.include.list"]
    assert re.fullmatch(pattern, NOTIFY_PREFIX) and not re.fullmatch(pattern, "changelakeXnotify")
    assert (
        f"'{NOTIFY_PREFIX}'" in shop_ddl() and "pg_logical_emit_message(\n      true" in shop_ddl()
    )
    assert message_topic(settings) == "changelake.message"


def test_strategy_setting_is_validated() -> None:
    assert Settings(enrich_strategy="lake").enrich_strategy == "lake"
    assert set(STRATEGIES) == {"n_plus_one", "batched", "lake"}
    with pytest.raises(ValueError):
        Settings(enrich_strategy="eventually")
    assert api_url(Settings(order_api_port=1234)) == "http://127.0.0.1:1234"


def test_api_rejects_bad_batches_before_any_query() -> None:
    settings = Settings(pg_port=1, order_api_rate=0.0)  # no PostgreSQL there
    with serving(settings) as url:
        assert requests.get(f"{url}/health", timeout=5).json() == {"ok": True}
        for ids in ("", "1,x", ",".join(["1"] * 1001)):
            resp = requests.get(f"{url}/orders", params={"ids": ids}, timeout=5)
            assert resp.status_code == 400, ids
        assert requests.get(f"{url}/orders/abc", timeout=5).status_code == 404
        assert requests.get(f"{url}/stats", timeout=5).json()["db_queries"] == 0


def test_definitions_hold_the_enrichment_asset_and_its_sensor() -> None:
    from pipelines.defs import build_definitions
    from pipelines.defs.enrich_assets import ENRICHED_KEY
    from pipelines.defs.keys import bronze_key
    from pipelines.enrich.lake import ORDERS

    defs = build_definitions(Settings(tables=("shop.orders",)))
    graph = defs.resolve_asset_graph()
    assert ENRICHED_KEY in graph.get_all_asset_keys()
    assert graph.get(ENRICHED_KEY).parent_keys == {bronze_key(ORDERS)}
    assert "order_notifications" in {s.name for s in defs.sensors}


def test_batches_span_chunk_boundaries_so_calls_are_ceil_n_over_size() -> None:
    from pipelines.enrich.callbacks import _batches

    events = thin.parse(
        [_msg(i, {"event": "OrderPaid", "orderId": i, "ts": 1}) for i in range(102)]
    )
    chunks = [events.slice(i, 50) for i in range(0, 102, 50)]
    sizes = [b.num_rows for b in _batches(iter(chunks), 7)]
    assert sizes == [7] * 14 + [4] and len(sizes) == math.ceil(102 / 7)
    offsets = [o for b in _batches(iter(chunks), 7) for o in b.column("_offset").to_pylist()]
    assert offsets == list(range(102))
