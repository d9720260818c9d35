"""Event notification on the real stack: the shop's thin events through Debezium, enriched.

The shop's trigger emits a transactional logical decoding message per order status change;
Debezium 3.6 streams it to ``<prefix>.message``. The three strategies run against the real
Starlette app (uvicorn on 127.0.0.1, real PostgreSQL behind it) and the real lake: they agree
where the order did not change after the event, ``lake`` equals ``as_of`` (and the event's own
transaction) everywhere, ``n_plus_one`` makes N calls and ``batched`` ceil(N / size) + retries.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import requests

from pipelines.bronze.lander import land
from pipelines.decode.special import Quarantine
from pipelines.enrich import lake as lakemod
from pipelines.enrich import source, thin
from pipelines.enrich.rows import STATE_COLUMNS, canonical_sql, disagreements
from pipelines.enrich.strategies import enrich
from pipelines.shop.api import serving
from pipelines.shop.demo import wait_until_streamed
from pipelines.shop.migrate import SHOP_TABLES, shop_ddl
from pipelines.shop.workload import run_workload
from pipelines.silver import as_of

pytestmark = pytest.mark.integration
ORDERS = lakemod.ORDERS


@pytest.fixture(scope="module")
def notified(stack):
    stack.capture(shop_ddl(), *(str(t) for t in SHOP_TABLES))
    settings = stack.settings
    start = source.end_offsets(settings)  # earlier modules of the session may have emitted some
    work = run_workload(settings, rate=40, duration=4, connections=2, seed=16)
    assert work.failed == 0, work.errors[:3]
    wait_until_streamed(settings)
    land(settings, tables=[ORDERS], until_caught_up=True)
    end = source.end_offsets(settings)
    quarantine = Quarantine(datetime.now(UTC))
    events = pa.concat_tables(
        [thin.parse(c, quarantine) for c in source.chunks(settings, start, end, max_records=500)]
    )
    assert len(quarantine) == 0, quarantine.table().column("error").to_pylist()[:3]
    return settings, events, work, None


def test_messages_carry_thin_events_of_committed_orders(notified, stack) -> None:
    settings, events, work, _ = notified
    placed = work.by_action["place_order"]
    kinds = events.column("event").to_pylist()
    assert placed > 5 and kinds.count("OrderPlaced") == placed
    assert kinds.count("OrderPaid") == work.by_action["pay_order"]
    placed_ids = {r["order_id"] for r in events.to_pylist() if r["event"] == "OrderPlaced"}
    assert len(placed_ids) == placed
    with stack.pg() as pg:
        ids = {r[0] for r in pg.execute("SELECT order_id FROM shop.orders").fetchall()}
    assert set(events.column("order_id").to_pylist()) <= ids
    assert all(t is not None for t in events.column("tx_id").to_pylist())


def test_strategies_agree_unless_changed_and_lake_is_as_of(notified) -> None:
    settings, events, _, _ = notified
    n = events.num_rows
    fast = settings.model_copy(update={"order_api_rate": 0.0, "enrich_batch_size": 7})
    chunk = [events.slice(i, 50) for i in range(0, n, 50)]
    with serving(fast) as url:
        before = requests.get(f"{url}/stats", timeout=5).json()
        n1 = enrich(fast, chunk, strategy="n_plus_one", base_url=url)
        mid = requests.get(f"{url}/stats", timeout=5).json()
        b = enrich(fast, chunk, strategy="batched", base_url=url)
        after = requests.get(f"{url}/stats", timeout=5).json()
    lake = enrich(fast, chunk, strategy="lake")
    truth = lakemod.truth(settings, events)
    assert n1.calls == n and n1.rejected_429 == 0
    assert mid["db_queries"] - before["db_queries"] == n
    assert b.calls <= math.ceil(n / 7) + b.retries and b.calls >= math.ceil(n / 7)
    assert after["db_queries"] - mid["db_queries"] == b.calls
    assert lake.calls == 0 and lake.unresolved == 0 and n1.unresolved == 0
    assert disagreements(lake.rows, truth) == 0  # the state the event referred to
    # unchanged after the event: its own version is the order's current one
    current = truth.filter(_latest_mask(truth, n1.rows))
    changed = n - current.num_rows
    assert changed > 0, "the workload paid/shipped no order after placing it"
    for rows in (n1.rows, b.rows, lake.rows):
        assert disagreements(_same(rows, current), current) == 0
    assert disagreements(n1.rows, b.rows) == 0  # nothing changed between the two fetches
    assert disagreements(n1.rows, lake.rows) == changed  # callbacks see the fetch-time state
    # lake == as_of(commit instant), checked where the order changed after the event
    stale = [r for r in _rows(lake.rows) if r not in _rows(n1.rows)][:4]
    assert stale
    for r in stale:
        snap = as_of(settings, ORDERS, r["commit_ts"], where=f"order_id = {int(r['order_id'])}")
        assert _canonical(snap) == {k: r[k] for k in STATE_COLUMNS}


def test_batched_backs_off_on_429_and_still_gets_every_row(notified) -> None:
    settings, events, _, _ = notified
    part = events.slice(0, 30)
    tight = settings.model_copy(
        update={
            "order_api_rate": 20.0,
            "order_api_burst": 2,
            "enrich_batch_size": 1,
            "enrich_concurrency": 4,
            "enrich_client_rate": 0.0,
        }
    )
    with serving(tight) as url:
        res = enrich(tight, [part], strategy="batched", base_url=url)
        served = requests.get(f"{url}/stats", timeout=5).json()
    assert res.rejected_429 > 0 and res.retries == res.rejected_429
    assert res.calls == part.num_rows + res.retries == served["requests"]
    assert served["rejected_429"] == res.rejected_429
    assert res.unresolved == 0


def test_on_the_iceberg_lake_lake_strategy_agrees_and_the_pass_is_exactly_once(
    notified, tmp_path
) -> None:
    """The ``lake`` strategy over Iceberg bronze gives the same states as over the Parquet
    lake, and a pass commits to ``enriched.shop__orders`` with the topic's offsets: a pass
    SIGKILLed with its commit staged, run again, enriches every notification once."""
    from test_landing import settings_env

    from pipelines.enrich.job import cursor, enrich_pass
    from pipelines.iceberg.catalog import load_table, open_catalog
    from pipelines.iceberg.names import ENRICHED
    from pipelines.landing import land as land_in_format

    settings, events, _, _ = notified
    ice = settings.model_copy(update={"lake_format": "iceberg", "lake": tmp_path / "lake"})
    land_in_format(ice, tables=[ORDERS], until_caught_up=True)
    chunk = [events.slice(i, 50) for i in range(0, events.num_rows, 50)]
    on_iceberg = enrich(ice, chunk, strategy="lake")
    assert on_iceberg.calls == 0 and on_iceberg.unresolved == 0
    assert disagreements(on_iceberg.rows, lakemod.truth(ice, events)) == 0
    assert disagreements(on_iceberg.rows, enrich(settings, chunk, strategy="lake").rows) == 0

    code = (
        "from pipelines.config import get_settings\n"
        "from pipelines.enrich.job import enrich_pass\n"
        "enrich_pass(get_settings(), strategy='lake')"
    )
    env = settings_env(ice) | {"CHANGELAKE_CRASH_AT": "land_staged"}
    died = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    assert cursor(ice) == {}  # nothing committed: the cursor is the table's own offsets
    done = enrich_pass(ice, strategy="lake")
    end = source.end_offsets(ice)
    assert done.result is not None and done.result.unresolved == 0 and cursor(ice) == end
    table = load_table(open_catalog(ice), ENRICHED, ORDERS)
    landed = table.scan().to_arrow()
    offsets = landed.column("_offset").to_pylist()
    assert len(offsets) == len(set(offsets)) == sum(end.values())  # each notification once
    assert disagreements(landed.rename_columns(
        ["_partition" if c == "_kafka_partition" else c for c in landed.column_names]
    ).drop_columns(["_topic"]), done.result.rows) == 0  # fmt: skip
    assert enrich_pass(ice, strategy="lake").result is None  # nothing enriched twice


def _key(r: dict) -> tuple:
    return (r["_partition"], r["_offset"])


def _rows(t: pa.Table) -> list[dict]:
    return t.to_pylist()


def _latest_mask(truth: pa.Table, fetched: pa.Table) -> list[bool]:
    now = {_key(r): r for r in fetched.to_pylist()}
    return [all(r[c] == now[_key(r)][c] for c in STATE_COLUMNS) for r in truth.to_pylist()]


def _same(rows: pa.Table, like: pa.Table) -> pa.Table:
    keep = {_key(r) for r in like.to_pylist()}
    return rows.filter([_key(r) in keep for r in rows.to_pylist()])


def _canonical(snap: pa.Table) -> dict:
    import duckdb

    con = duckdb.connect()
    con.register("s", snap)
    row = con.sql(f"SELECT {canonical_sql('s')} FROM s").to_arrow_table().to_pylist()  # noqa: S608
    assert len(row) == 1
    return row[0]


def test_up_serves_the_api_and_the_sensor_triggers_one_enrichment_pass(notified) -> None:
    import dagster as dg

    from pipelines.defs.enrich_assets import ENRICHED_KEY, build_enrich_sensor
    from pipelines.defs.resources import ChangelakeResource
    from pipelines.enrich.job import cursor, enrich_pass
    from pipelines.enrich.strategies import api_url

    settings, events, _, _ = notified
    oid = events.column("order_id")[0].as_py()
    assert requests.get(f"{api_url(settings)}/orders/{oid}", timeout=5).json()["order_id"] == oid
    sensor = build_enrich_sensor()
    resources = {"changelake": ChangelakeResource.from_settings(settings)}
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        asked = sensor(ctx)
        assert [r.asset_selection for r in asked.run_requests] == [[ENRICHED_KEY]]
        before = cursor(settings)  # the Dagster module's materialisation may have advanced it
        done = enrich_pass(settings, strategy="lake")
        assert done.result is not None and done.result.unresolved == 0 and done.quarantined == 0
        assert done.result.rows.num_rows == sum(done.end.values()) - sum(before.values())
        assert done.result.rows.num_rows >= events.num_rows
        assert cursor(settings) == done.end == source.end_offsets(settings)
        again = enrich_pass(settings, strategy="lake")
        assert again.result is None  # nothing enriched twice
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        assert isinstance(sensor(ctx), dg.SkipReason)
