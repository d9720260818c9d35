"""Workload generator pieces that need no database: the burst plan, the mix, the seed data."""

from __future__ import annotations

import random
import re
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.config import Settings
from pipelines.shop import actions, seed
from pipelines.shop.migrate import SHOP_TABLES, shop_ddl
from pipelines.shop.workload import plan_black_friday, run_workload

pytestmark = pytest.mark.unit


def test_black_friday_window_is_inside_the_run_and_asks_in_its_middle() -> None:
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    bf = plan_black_friday(start, 100)
    assert bf.start == start + timedelta(seconds=40)
    assert bf.end == start + timedelta(seconds=70)
    assert bf.start < bf.ask_at < bf.end
    assert bf.ask_at.tzinfo is not None


def test_burst_mix_shifts_traffic_towards_orders() -> None:
    normal = sum(w for _, w, _ in actions.MIX)
    peak = sum(w for _, _, w in actions.MIX)
    order_normal = next(w for a, w, _ in actions.MIX if a is actions.place_order)
    order_peak = next(w for a, _, w in actions.MIX if a is actions.place_order)
    assert order_peak / peak > 2 * order_normal / normal
    # every business transaction the brief names is in the normal mix
    names = {a.__name__ for a, w, _ in actions.MIX if w > 0}
    for wanted in (
        "sign_up",
        "change_email",
        "change_address",
        "change_price",
        "place_order",
        "pay_order",
        "ship_order",
        "cancel_order",
        "refund_order",
        "receive_stock",
        "adjust_stock",
        "delete_something",
    ):
        assert wanted in names


def test_descriptions_are_large_and_incompressible_so_they_are_toasted() -> None:
    rng = random.Random(1)
    for _ in range(5):
        text = seed.description(rng)
        assert 4096 <= len(text) <= 8192
        assert len(zlib.compress(text.encode())) > 0.7 * len(text)


def test_seed_data_is_deterministic() -> None:
    a = [seed.description(random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert seed.money(random.Random(3), 5, 900) == seed.money(random.Random(3), 5, 900)


def test_schema_declares_every_demo_table_with_the_required_types() -> None:
    ddl = shop_ddl()
    for t in SHOP_TABLES:
        assert f"CREATE TABLE IF NOT EXISTS shop.{t.table} (" in ddl
    for needle in (
        "numeric(12,2)",
        "timestamptz",
        "jsonb",
        "CREATE TYPE shop.order_status",
        "REFERENCES",
        "SET STORAGE EXTERNAL",
    ):
        assert needle in ddl
    assert re.search(r"REPLICA\s+IDENTITY\s+(FULL|NOTHING|USING)", ddl, re.I) is None


def test_demo_tables_in_settings_match_the_shop() -> None:
    from pipelines.config import DEMO_TABLES

    assert {str(t) for t in SHOP_TABLES} == set(DEMO_TABLES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0, "duration": 1},
        {"rate": 1, "duration": 0},
        {"rate": 1, "duration": 1, "connections": 0},
    ],
)
def test_bad_arguments_fail_before_touching_the_database(kwargs: dict) -> None:
    settings = Settings(pg_port=1)  # nothing listens there: reaching it would be a different error
    with pytest.raises(ValueError):
        run_workload(settings, **kwargs)
