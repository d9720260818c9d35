"""Recorded real Debezium messages (tests/fixtures/record_debezium.py) through decode + bronze.

Exercises every PostgreSQL type of the type zoo end to end into Parquet and back through
DuckDB, the transaction topic, heartbeats (never a table) and the lake lock, without Kafka.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from pipelines.bronze import bronze_tables, files, key_columns, landed_offsets, scan
from pipelines.bronze.lander import LanderBusy, LandingResult, lake_lock, land_batch
from pipelines.decode import RawMessage
from pipelines.decode.replay import read_jsonl
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).parent.parent / "fixtures" / "debezium" / "typezoo.jsonl"


def by_partition() -> dict[tuple[str, int], list[RawMessage]]:
    groups: dict[tuple[str, int], list[RawMessage]] = defaultdict(list)
    for m in read_jsonl(RECORDED):
        groups[(m.topic, m.partition)].append(m)
    return groups


def test_recorded_messages_land_and_read_back(tmp_path: Path) -> None:
    result = LandingResult()
    groups = by_partition()
    for msgs in groups.values():
        half = max(1, len(msgs) // 2)  # two batches per partition: files must union
        for part in (msgs[:half], msgs[half:]):
            if part:
                land_batch(tmp_path, part, topic_prefix="zoo", result=result)
    # the recording turns zoo.evolving.v from int into text: reported, and still landed
    assert any(w.startswith("zoo.evolving: column 'v' changed type") for w in result.warnings)
    assert not any("keyless" in w for w in result.warnings)
    assert landed_offsets(tmp_path) == {k: v[-1].offset for k, v in groups.items()}
    tables = {t for t in bronze_tables(tmp_path) if t != "_transactions"}
    assert tables == {
        QualifiedName("zoo", n) for n in ("typezoo", "keyless", "evolving", "precisions")
    }
    assert not any("heartbeat" in str(t) for t in tables)
    with duckdb.connect() as con:
        for t in tables:
            topic = f"zoo.{t.schema}.{t.table}"
            expected = sorted(m.offset for m in groups[(topic, 0)] if m.value is not None)
            rel = scan(con, tmp_path, t)
            got = sorted(r[0] for r in rel.select("_offset").fetchall())
            assert got == expected, t
            rel.fetchall()  # every column of every type reads back
        n_tx = scan(con, tmp_path, "_transactions").aggregate("count(*)").fetchall()[0][0]
    assert n_tx == len(groups[("zoo.transaction", 0)])
    assert key_columns(tmp_path, QualifiedName("zoo", "keyless")) == []
    assert key_columns(tmp_path, QualifiedName("zoo", "typezoo")) != []
    assert len(files(tmp_path, QualifiedName("zoo", "typezoo"))) >= 2


def test_one_lander_per_lake(tmp_path: Path) -> None:
    with lake_lock(tmp_path), pytest.raises(LanderBusy), lake_lock(tmp_path):
        pass
