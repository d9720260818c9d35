"""Landing straight into Iceberg (``IcebergStore``), from the real connector's recorded messages.

The same batches go through the lander's ``land_batch`` into the Parquet lake and into Iceberg;
the Iceberg tables must hold what the Parquet lake holds, and a lander killed (SIGKILL, in a
child process) at any state of any table's commit, then run again over the same messages, must
leave every offset exactly once.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import recorded_lake
from iceberg_checks import assert_bronze_equal, iceberg_table, table_offsets
from recorded_lake import POISONED, landed_batches, zoo_settings

from pipelines.bronze.lander import land_batch
from pipelines.bronze.layout import TRANSACTIONS
from pipelines.bronze.topics import home_tables
from pipelines.config import Settings
from pipelines.decode import RawMessage
from pipelines.iceberg.landing import IcebergStore, parts_of
from pipelines.iceberg.names import BRONZE, QUARANTINE
from pipelines.iceberg.offsets import committed_offsets
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit
TESTS = Path(__file__).parent.parent
EVOLVING = QualifiedName("zoo", "evolving")


def land_both(settings: Settings, parts: int = 3) -> IcebergStore:
    store = IcebergStore(settings, home_tables(settings))
    for batch in landed_batches(settings, parts):
        land_batch(settings.lake_root, batch, topic_prefix=recorded_lake.PREFIX)
        land_batch(settings.lake_root, batch, topic_prefix=recorded_lake.PREFIX, store=store)
    return store


def test_iceberg_landing_holds_what_the_parquet_lake_holds(tmp_path: Path) -> None:
    settings = zoo_settings(tmp_path / "home")
    store = land_both(settings)
    for name in [*recorded_lake.TABLES, TRANSACTIONS]:
        # the two landings ran at different moments: only their ingestion times differ
        assert_bronze_equal(settings, name, ignore=("_ingested_at",))
    # an int -> text change between batches became Iceberg schema evolution (old v kept)
    names = {f.name for f in iceberg_table(settings, BRONZE, EVOLVING).schema().fields}
    assert "v" in names and any(n.startswith("v__") for n in names), names
    # the home tables' positions are where each partition resumes: past its last message
    last = {k: v[-1].offset for k, v in recorded_lake.by_partition().items()}
    homes = home_tables(settings)
    assert store.landed(list(homes)) == {k: n for k, n in last.items() if k[0] in homes}
    assert json_key(iceberg_table(settings, BRONZE, recorded_lake.TABLES[0])) == ["id"]


def json_key(table) -> list[str]:  # noqa: ANN001
    import json

    return json.loads(table.properties["changelake.key"])


def test_a_batch_commits_quarantine_first_and_its_home_last(tmp_path: Path) -> None:
    settings = zoo_settings(tmp_path / "home")
    topic = f"{recorded_lake.PREFIX}.zoo.typezoo"
    msgs = recorded_lake.by_partition()[(topic, 0)][:4]
    bad = RawMessage(
        topic, 0, msgs[-1].offset + 1, msgs[-1].timestamp_ms, b'{"id":1}', b"{not json"
    )
    from datetime import UTC, datetime

    from pipelines.decode import decode_batch

    decoded = decode_batch([*msgs, bad], ingested_at=datetime.now(UTC), topic_prefix="zoo")
    home = home_tables(settings)[topic]
    parts = parts_of(decoded, topic, home, datetime.now(UTC), time_as_micros=False)
    assert [(p.layer, p.name) for p in parts] == [(QUARANTINE, topic), (BRONZE, home)]
    assert parts[0].rows.num_rows == 1 and parts[1].rows.num_rows == 4


def test_a_home_with_no_rows_still_records_the_position(tmp_path: Path) -> None:
    settings = zoo_settings(tmp_path / "home")
    store = land_both(settings, parts=1)
    topic = f"{recorded_lake.PREFIX}.zoo.typezoo"
    table = iceberg_table(settings, BRONZE, home_tables(settings)[topic])
    before = committed_offsets(table)
    last = recorded_lake.by_partition()[(topic, 0)][-1]
    tombstone = RawMessage(topic, 0, last.offset + 1, last.timestamp_ms, b'{"id": 1}', None)
    land_batch(settings.lake_root, [tombstone], topic_prefix="zoo", store=store)
    table.refresh()
    after = committed_offsets(table)
    assert [after[tp] - before[tp] for tp in before] == [1]
    assert table.scan().to_arrow().num_rows == sum(table_offsets(table).values())


CHILD = """
import sys
sys.path[:0] = [{tests!r}, {unit!r}]
from pathlib import Path
from recorded_lake import landed_batches, zoo_settings
from pipelines.bronze.lander import land_batch
from pipelines.bronze.topics import home_tables
from pipelines.iceberg.landing import IcebergStore

settings = zoo_settings(Path({home!r}))
store = IcebergStore(settings, home_tables(settings))
landed = store.landed(list(home_tables(settings)))  # where the lander would seek to
for batch in landed_batches(settings, {parts}, poison=True):
    batch = [m for m in batch if m.offset > landed.get((m.topic, m.partition), -1)]
    if batch:
        land_batch(settings.lake_root, batch, topic_prefix="zoo", store=store)
"""


def run_lander_child(home: Path, parts: int, crash_at: str | None, skip: int) -> int:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    if crash_at:
        env.update(CHANGELAKE_CRASH_AT=crash_at, CHANGELAKE_CRASH_SKIP=str(skip))
    code = CHILD.format(tests=str(TESTS), unit=str(TESTS / "unit"), home=str(home), parts=parts)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    if crash_at is None:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.returncode


def all_offsets(settings: Settings) -> Counter:
    """(topic, partition, offset) of every row of every bronze and quarantine table."""
    quarantine = iceberg_table(settings, QUARANTINE, POISONED).scan().to_arrow()
    cols = [quarantine[c].to_pylist() for c in ("topic", "partition", "offset")]
    got: Counter = Counter(zip(*cols, strict=True))
    for name in [*recorded_lake.TABLES, TRANSACTIONS]:
        rows = iceberg_table(settings, BRONZE, name).scan().to_arrow()
        if name == TRANSACTIONS:
            rows = rows.select(["_topic", "_kafka_partition", "_offset"])
        got.update(table_offsets_of(rows))
    return got


def table_offsets_of(rows: pa.Table) -> Counter:
    cols = [rows[c].to_pylist() for c in ("_topic", "_kafka_partition", "_offset")]
    return Counter(zip(*cols, strict=True))


@pytest.mark.parametrize("state", ["checking", "staged", "committed"])
def test_sigkill_at_every_commit_state_then_rerun_lands_every_offset_once(
    tmp_path: Path, state: str
) -> None:
    settings = zoo_settings(tmp_path / "home")
    # die at this state of the 4th commit (quarantine's, its batch's home not yet), then of
    # the 7th, running again after each death
    for skip in (3, 6):
        assert run_lander_child(settings.home, 3, f"land_{state}", skip) == -9
    run_lander_child(settings.home, 3, None, 0)
    got = all_offsets(settings)
    assert max(got.values()) == 1, [k for k, n in got.items() if n > 1][:5]
    wanted = {
        (m.topic, m.partition, m.offset)
        for batch in landed_batches(settings, 3, poison=True)
        for m in batch
        if m.value is not None
    }
    assert set(got) == wanted


def test_a_landing_table_merges_its_manifests_so_commits_stay_flat(tmp_path: Path) -> None:
    """Each append adds a manifest; with the landing properties they are merged, so the
    current snapshot does not carry one manifest per commit ever made."""
    from iceberg_lake import SCHEMA, TABLE, make_batch, settings_for

    from pipelines.iceberg.catalog import ensure_table, open_catalog, set_properties
    from pipelines.iceberg.commit import commit_batch
    from pipelines.iceberg.landing import LANDING_PROPERTIES

    table = ensure_table(open_catalog(settings_for(tmp_path / "home")), BRONZE, TABLE, SCHEMA)
    set_properties(table, LANDING_PROPERTIES)
    for i in range(130):
        commit_batch(table, make_batch(0, i * 3, i * 3 + 3))
    manifests = table.current_snapshot().manifests(table.io)
    assert len(manifests) < 100, len(manifests)  # fast append alone would leave 130
    assert table.scan().to_arrow().num_rows == 390
