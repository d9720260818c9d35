"""Iceberg on S3: exactly-once commits to a bronze table whose files live on s3proxy.

The real managed endpoint (``changelake up`` starts s3proxy because the warehouse is s3://),
the real PostgreSQL of the session stack as the catalog; pyiceberg writes through its S3
FileIO, DuckDB reads back through httpfs with the S3 secret ``engine.connect`` creates.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from iceberg_lake import CRASH_EXIT, SCHEMA, TABLE, make_batch, run_child
from iceberg_s3 import BUCKET, s3_lake

from pipelines.config import Settings
from pipelines.iceberg import engine
from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog
from pipelines.iceberg.commit import CommitState, commit_batch
from pipelines.iceberg.names import BRONZE
from pipelines.stack import s3proxy
from pipelines.stack.layout import Layout
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

NAME = "s3_commit"
LANDED = "s3_landed"  # the catalog of the test landing straight into Iceberg


@pytest.fixture(scope="module")
def lake(stack: StackHandle) -> Iterator[Settings]:
    with s3_lake(stack, NAME) as settings:
        yield settings


def test_commit_batch_on_s3proxy_is_exactly_once_and_duckdb_reads_it(
    stack: StackHandle, lake: Settings
) -> None:
    started = time.monotonic()
    layout = Layout.of(lake)
    assert lake.s3_managed and s3proxy.pid(layout) is not None, "up did not start s3proxy"
    table = ensure_table(open_catalog(lake), BRONZE, TABLE, SCHEMA)
    assert table.metadata_location.startswith(f"s3://{BUCKET}/{NAME}/bronze/shop__orders/")

    assert commit_batch(table, make_batch(0, 0, 10)).state is CommitState.COMMITTED
    assert commit_batch(table, make_batch(1, 0, 5)).state is CommitState.COMMITTED
    assert commit_batch(table, make_batch(0, 0, 10)).state is CommitState.SKIPPED  # replay
    overlap = commit_batch(table, make_batch(0, 5, 15))  # half replayed: trimmed to [10, 15)
    assert (overlap.state, overlap.rows) == (CommitState.COMMITTED, 5)
    # a committer SIGKILLed at each state of the protocol, then retried: after COMMITTED the
    # retry skips; in CHECKING or STAGED (objects written to S3, the catalog not yet pointing
    # at them) the table is unchanged and the retry appends
    for (start, end), state, retried in (
        ((15, 20), "committed", CommitState.SKIPPED),
        ((20, 25), "staged", CommitState.COMMITTED),
        ((25, 30), "checking", CommitState.COMMITTED),
    ):
        died = run_child(stack.home, 0, [[start, end]], crash_at=state, crash_batch=0)
        assert died.returncode == CRASH_EXIT, (state, died.stderr)
        assert commit_batch(table, make_batch(0, start, end)).state is retried, state

    expected = sorted(
        [(0, o, f"p0o{o}") for o in range(30)] + [(1, o, f"p1o{o}") for o in range(5)]
    )
    current = load_table(open_catalog(lake), BRONZE, TABLE)
    rows = current.scan(selected_fields=("_kafka_partition", "_offset", "payload")).to_arrow()
    got = sorted(
        zip(*(rows[c].to_pylist() for c in ("_kafka_partition", "_offset", "payload")), strict=True)
    )
    assert got == expected
    assert Counter((p, o) for p, o, _ in got).most_common(1)[0][1] == 1  # no offset twice

    con = engine.connect(lake)
    duck = con.execute(
        "SELECT _kafka_partition, _offset, payload FROM iceberg_scan(?) ORDER BY ALL",
        [current.metadata_location],
    ).fetchall()
    assert duck == expected

    # the files are objects of s3proxy's bucket, not a local warehouse
    objects = layout.s3_data / BUCKET / NAME / "bronze" / "shop__orders"
    assert any(objects.glob("data/*.parquet")) and any(objects.glob("metadata/*.metadata.json"))
    # (other modules of the session may publish to a local warehouse under the same lake)
    assert all(t.file.file_path.startswith("s3://") for t in current.scan().plan_files())
    print(f"\ns3 commit test: {time.monotonic() - started:.1f}s after the fixture")


def test_the_published_lake_on_s3_partitions_rewrites_and_travels_in_time(
    lake: Settings, tmp_path
) -> None:
    """Issue 14 on S3: silver partitioned by key, bronze's small files rewritten, ``as_of`` over
    Iceberg equal to the lake's at every commit instant, and the DuckDB file's views and
    macros, all with the files on s3proxy and the PostgreSQL catalog."""
    import recorded_lake
    from iceberg_checks import assert_same_as_the_lake, commit_instants

    from pipelines.iceberg import partitioning
    from pipelines.iceberg.duckdb_catalog import catalog_path
    from pipelines.iceberg.names import SILVER, table_name
    from pipelines.iceberg.publish import publish_lake
    from pipelines.iceberg.rewrite import REWRITE_KEY

    own = lake.model_copy(
        update={
            "lake": tmp_path / "lake",
            "iceberg_silver_partition_bytes": 1,
            "iceberg_rewrite_min_files": 3,
        }
    )
    recorded_lake.land(own.lake_root, parts=4, upto=0.5)
    recorded_lake.compact_all(own.lake_root)
    publish_lake(own, max_rows=1)  # an append per batch: small files to rewrite
    recorded_lake.land_rest(own.lake_root, after=0.5)
    recorded_lake.compact_all(own.lake_root)
    report = publish_lake(own, max_rows=1)
    assert any(t.small_files_rewritten for t in report.tables), report.tables
    catalog = open_catalog(own)
    qn = recorded_lake.TABLES[0]
    bronze = load_table(catalog, BRONZE, qn)
    assert any(REWRITE_KEY in (s.summary or {}) for s in bronze.snapshots())
    silver = load_table(catalog, SILVER, qn)
    assert partitioning.current(silver) is not None
    assert silver.metadata_location.startswith(f"s3://{BUCKET}/{NAME}/silver/")
    for table in recorded_lake.TABLES:
        assert_same_as_the_lake(own, table, commit_instants(own, table, most=6))
    name = table_name(qn)
    with engine.connect(own, str(catalog_path(own)), read_only=True) as con:
        rows = con.execute(f'SELECT count(*) FROM silver."{name}"').fetchone()[0]  # noqa: S608
        ts = commit_instants(own, qn, most=1)[-1]
        at = con.execute(f'SELECT count(*) FROM silver."as_of_{name}"(?)', [ts]).fetchone()[0]  # noqa: S608
    assert rows == at == silver.scan().to_arrow().num_rows > 0


def test_the_recording_lands_and_compacts_straight_into_iceberg_on_s3(
    lake: Settings, tmp_path
) -> None:
    """CHANGELAKE_LAKE_FORMAT=iceberg's store and compaction on s3proxy with the PostgreSQL
    catalog: the recorded connector messages landed (a poisoned one quarantined) and compacted
    in two rounds; silver and ``as_of`` equal the Parquet lake's from the same batches."""
    from datetime import UTC, datetime

    import recorded_lake
    from iceberg_checks import assert_same_as_the_lake, assert_same_rows, commit_instants

    from pipelines.bronze.lander import land_batch
    from pipelines.bronze.topics import home_tables
    from pipelines.iceberg import compaction
    from pipelines.iceberg.conform import to_iceberg
    from pipelines.iceberg.landing import IcebergStore
    from pipelines.iceberg.names import QUARANTINE, SILVER
    from pipelines.silver import timetravel

    keep = {k: v for k, v in lake.model_dump().items() if k.startswith(("iceberg_", "s3_"))}
    # a catalog and prefix of its own: the publish test above puts the same zoo tables in NAME
    keep.update(iceberg_catalog_name=LANDED, iceberg_warehouse=f"s3://{BUCKET}/{LANDED}")
    settings = recorded_lake.zoo_settings(lake.home, lake=tmp_path / "lake", **keep)
    store = IcebergStore(settings, home_tables(settings))
    batches = recorded_lake.landed_batches(settings, 2, poison=True)
    half = len(batches) // 2
    for part in (batches[:half], batches[half:]):
        for batch in part:
            land_batch(settings.lake_root, batch, topic_prefix="zoo")
            land_batch(settings.lake_root, batch, topic_prefix="zoo", store=store)
        recorded_lake.compact_all(settings.lake_root)
        compaction.compact_all(settings)
    catalog = open_catalog(settings)
    far = datetime(9999, 1, 1, tzinfo=UTC)
    for qn in recorded_lake.TABLES:
        silver = load_table(catalog, SILVER, qn)
        assert silver.metadata_location.startswith(f"s3://{BUCKET}/{LANDED}/silver/")
        want = to_iceberg(timetravel.as_of(settings.lake_root, qn, far))
        assert_same_rows(silver.scan().to_arrow(), want, qn)
        assert assert_same_as_the_lake(settings, qn, commit_instants(settings, qn, 4)) >= 2
    quarantined = load_table(catalog, QUARANTINE, recorded_lake.POISONED).scan().to_arrow()
    assert quarantined.num_rows == 1
