"""Publishing the lake to Iceberg (pipelines/iceberg/publish.py) on real pyiceberg and DuckDB.

The lake is landed from the real connector's recorded messages (every type of the type zoo),
so the comparison is against what changelake itself reads: DuckDB over bronze's Parquet and
silver's snapshots on one side, DuckDB's ``iceberg_scan`` over the published tables on the
other. Crashes are real SIGKILLs of a child publisher at each commit state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import recorded_lake
from iceberg_checks import assert_bronze_equal, iceberg_table, lake_offsets, table_offsets

from pipelines.bronze.layout import list_lake
from pipelines.config import Settings
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.names import BRONZE, SILVER
from pipelines.iceberg.offsets import committed_offsets
from pipelines.iceberg.publish import publish_lake
from pipelines.iceberg.silver_publish import SNAPSHOT_KEY, WATERMARK_LSN_KEY, published_snapshot
from pipelines.naming import QualifiedName
from pipelines.silver import snapshots

pytestmark = pytest.mark.unit
BRONZE_TABLES = (*recorded_lake.TABLES, "_transactions")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home")


def test_the_recorded_lake_publishes_whole_and_only_once(settings: Settings) -> None:
    lake = settings.lake_root
    recorded_lake.land(lake, parts=3)
    recorded_lake.compact_all(lake)
    report = publish_lake(settings)
    assert {(t.layer, t.table) for t in report.tables} >= {
        (BRONZE, str(n)) for n in BRONZE_TABLES
    } | {(SILVER, str(n)) for n in recorded_lake.TABLES}
    for name in BRONZE_TABLES:
        assert_bronze_equal(settings, name)
        table = iceberg_table(settings, BRONZE, name)
        assert table_offsets(table) == lake_offsets(settings, name)
        assert max(table_offsets(table).values()) == 1
    # the type change int -> text keeps the old values, renamed, and says so
    evolving = next(t for t in report.tables if t.table == "zoo.evolving" and t.layer == BRONZE)
    assert any(c.startswith("v kept as v__") for c in evolving.changes), evolving.changes
    assert json.loads(
        iceberg_table(settings, BRONZE, recorded_lake.TABLES[0]).properties["changelake.key"]
    )
    # silver: the current snapshot, its id and watermark in the summary
    for qn in recorded_lake.TABLES:
        manifest = snapshots.current(lake, qn)
        table = iceberg_table(settings, SILVER, qn)
        summary = table.current_snapshot().summary
        assert summary[SNAPSHOT_KEY] == manifest.snapshot_id
        if manifest.watermark_lsn is not None:
            assert summary[WATERMARK_LSN_KEY] == str(manifest.watermark_lsn)
        assert table.scan().to_arrow().num_rows == manifest.rows
    # a second publish finds everything in and commits nothing
    again = publish_lake(settings)
    assert again.rows == 0 and again.snapshots == 0


def test_publishing_goes_on_where_the_tables_say(settings: Settings) -> None:
    lake = settings.lake_root
    recorded_lake.land(lake, parts=2, upto=0.5)
    recorded_lake.compact_all(lake)
    first = publish_lake(settings)
    recorded_lake.land_rest(lake, after=0.5)
    recorded_lake.compact_all(lake)
    second = publish_lake(settings)
    assert first.rows and second.rows
    for name in BRONZE_TABLES:
        assert_bronze_equal(settings, name)
        assert max(table_offsets(iceberg_table(settings, BRONZE, name)).values()) == 1
    # each silver snapshot is one Iceberg snapshot: the first state is still readable
    qn = QualifiedName("zoo", "typezoo")
    table = iceberg_table(settings, SILVER, qn)
    ours = [m.snapshot_id for m in snapshots.list_snapshots(lake, qn)]
    theirs = [s.summary[SNAPSHOT_KEY] for s in table.snapshots()]
    assert theirs == ours and len(ours) == 2
    old = snapshots.list_snapshots(lake, qn)[0]
    assert table.scan(snapshot_id=table.snapshots()[0].snapshot_id).to_arrow().num_rows == old.rows


def test_a_batch_in_flight_holds_back_its_partition(settings: Settings) -> None:
    lake = settings.lake_root
    recorded_lake.land(lake, parts=3)
    listing = list_lake(lake)
    qn = QualifiedName("zoo", "typezoo")
    batches = sorted(b for b, fs in listing.complete.items() if b.topic == "zoo.zoo.typezoo")
    (middle,) = (f for f in listing.complete[batches[1]] if f.path.suffix == ".parquet")
    # the middle batch now looks half-written (1 of 2 files), as while the lander writes it
    assert (middle.k, middle.n) == (1, 1)
    partial = middle.path.with_name(middle.path.name.replace(".1of1.", ".1of2."))
    os.rename(middle.path, partial)
    publish_lake(settings, tables=[qn])
    position = committed_offsets(iceberg_table(settings, BRONZE, qn))
    assert [n for tp, n in position.items()] == [batches[0].last + 1]
    os.rename(partial, middle.path)
    publish_lake(settings, tables=[qn])
    assert_bronze_equal(settings, qn)


CHILD = """
import sys
from pathlib import Path
from pipelines.config import Settings
from pipelines.iceberg.publish import publish_lake
publish_lake(Settings(_env_file=None, home=Path(sys.argv[1])), max_rows=int(sys.argv[2]))
"""


def _child(
    settings: Settings, crash_at: str | None, skip: int = 0, max_rows: int = 5
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    if crash_at:
        env |= {"CHANGELAKE_CRASH_AT": crash_at, "CHANGELAKE_CRASH_SKIP": str(skip)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(settings.home), str(max_rows)],
        env=env,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("state", ["checking", "staged", "committed"])
def test_a_publisher_killed_at_any_commit_state_loses_and_repeats_nothing(
    settings: Settings, state: str
) -> None:
    lake = settings.lake_root
    recorded_lake.land(lake, parts=4)
    recorded_lake.compact_all(lake)
    for skip in (0, 3):  # the first commit, and one mid-way through the tables
        proc = _child(settings, f"publish_{state}", skip)
        assert proc.wait(timeout=120) == -9, proc.stderr.read().decode()[-2000:]
    proc = _child(settings, None)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    for name in BRONZE_TABLES:
        table = iceberg_table(settings, BRONZE, name)
        assert table_offsets(table) == lake_offsets(settings, name), name
    for qn in recorded_lake.TABLES:
        assert (
            published_snapshot(iceberg_table(settings, SILVER, qn))
            == snapshots.current(lake, qn).snapshot_id
        )


def test_racing_publishers_land_every_event_once(settings: Settings) -> None:
    lake = settings.lake_root
    recorded_lake.land(lake, parts=4)
    recorded_lake.compact_all(lake)
    procs = [_child(settings, None, max_rows=3) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=180) == 0, proc.stderr.read().decode()[-2000:]
    for name in BRONZE_TABLES:
        assert table_offsets(iceberg_table(settings, BRONZE, name)) == lake_offsets(
            settings, name
        ), name
    for qn in recorded_lake.TABLES:
        table = iceberg_table(settings, SILVER, qn)
        assert [s.summary[SNAPSHOT_KEY] for s in table.snapshots()] == [
            m.snapshot_id for m in snapshots.list_snapshots(lake, qn)
        ]


def test_the_publish_command_reports_each_table_and_then_nothing_new(settings: Settings) -> None:
    from cli_run import run

    recorded_lake.land(settings.lake_root, parts=2)
    recorded_lake.compact_all(settings.lake_root)
    env = {"CHANGELAKE_HOME": str(settings.home)}
    first = run(["publish"], env)
    assert first.returncode == 0, first.stderr
    words = " ".join(first.stderr.split())
    assert "zoo.typezoo" in words and "_transactions" in words and "published " in words
    assert "schema: bronze.zoo.evolving: v kept as v__" in words
    second = run(["publish"], env)
    assert second.returncode == 0, second.stderr
    assert "published 0 rows in 0 Iceberg snapshot(s)" in " ".join(second.stderr.split())


def test_the_run_service_publish_stage_counts_what_it_committed(settings: Settings) -> None:
    import threading

    from pipelines.service.runner import RunOptions, Service

    recorded_lake.land(settings.lake_root, parts=2)
    recorded_lake.compact_all(settings.lake_root)
    svc = Service(settings, RunOptions(metrics_port=None, publish_every_s=0.01))
    svc.publish_step(threading.Event())
    figures = svc.metrics.figures
    total = sum(
        iceberg_table(settings, BRONZE, n).scan().to_arrow().num_rows for n in BRONZE_TABLES
    )
    silver = sum(
        iceberg_table(settings, SILVER, n).scan().to_arrow().num_rows for n in recorded_lake.TABLES
    )
    assert figures.iceberg_rows == total + silver > 0
    assert figures.iceberg_snapshots >= len(BRONZE_TABLES) + len(recorded_lake.TABLES)
    svc.publish_step(threading.Event())  # nothing new
    assert figures.iceberg_rows == total + silver


def test_quarantined_messages_publish_with_their_bytes_and_offsets(settings: Settings) -> None:
    from pipelines.bronze.lander import land_batch
    from pipelines.decode import RawMessage
    from pipelines.iceberg.names import QUARANTINE

    lake = settings.lake_root
    msgs = recorded_lake.by_partition()[("zoo.zoo.typezoo", 0)]
    last = msgs[-1]
    bad = [
        RawMessage(last.topic, 0, last.offset + 1, last.timestamp_ms, b"k", b"\xff not json"),
        RawMessage(last.topic, 0, last.offset + 2, last.timestamp_ms, None, b'{"schema": 1}'),
    ]
    land_batch(lake, msgs[: len(msgs) // 2], topic_prefix=recorded_lake.PREFIX)
    land_batch(lake, [*msgs[len(msgs) // 2 :], *bad], topic_prefix=recorded_lake.PREFIX)
    report = publish_lake(settings)
    assert (QUARANTINE, "zoo.zoo.typezoo") in {(t.layer, t.table) for t in report.tables}
    table = iceberg_table(settings, QUARANTINE, "zoo.zoo.typezoo")
    rows = table.scan().to_arrow().sort_by("offset").to_pylist()
    assert [(r["topic"], r["partition"], r["offset"], r["value"]) for r in rows] == [
        (m.topic, m.partition, m.offset, m.value) for m in bad
    ]
    assert all(r["error"] for r in rows)
    assert committed_offsets(table) == committed_offsets(
        iceberg_table(settings, BRONZE, recorded_lake.TABLES[0])
    )
    assert_bronze_equal(settings, recorded_lake.TABLES[0])
    assert publish_lake(settings).rows == 0


def test_silver_history_follows_the_lakes_retention(settings: Settings) -> None:
    from pipelines.silver.snapshots import retain

    lake = settings.lake_root
    qn = QualifiedName("zoo", "typezoo")
    recorded_lake.land(lake, parts=2, upto=0.5)
    recorded_lake.compact_all(lake)
    publish_lake(settings)
    recorded_lake.land_rest(lake, after=0.5)
    recorded_lake.compact_all(lake)
    publish_lake(settings)
    table = iceberg_table(settings, SILVER, qn)
    first_files = {
        t.file.file_path
        for t in table.scan(snapshot_id=table.snapshots()[0].snapshot_id).plan_files()
    }
    assert len(table.snapshots()) == 2
    assert retain(lake, qn, keep_last=1)  # the lake drops the older silver snapshot
    report = publish_lake(settings)
    silver = next(t for t in report.tables if t.layer == SILVER and t.table == str(qn))
    assert silver.expired == 1 and silver.files_deleted == len(first_files) > 0
    table = iceberg_table(settings, SILVER, qn)
    assert [s.summary[SNAPSHOT_KEY] for s in table.snapshots()] == [
        snapshots.current(lake, qn).snapshot_id
    ]
    assert not any(Path(p.removeprefix("file://")).exists() for p in first_files)
    assert table.scan().to_arrow().num_rows == snapshots.current(lake, qn).rows


def test_bronze_expiry_keeps_every_row_and_the_offsets(settings: Settings) -> None:
    from pipelines.iceberg.expiry import expire_appended

    recorded_lake.land(settings.lake_root, parts=5)
    publish_lake(settings, max_rows=1)  # one Iceberg snapshot per batch
    qn = QualifiedName("zoo", "typezoo")
    table = iceberg_table(settings, BRONZE, qn)
    before, offsets = len(table.snapshots()), committed_offsets(table)
    assert before >= 4
    assert len(expire_appended(table, keep_last=2)[0]) == before - 2
    table = iceberg_table(settings, BRONZE, qn)
    assert len(table.snapshots()) == 2 and committed_offsets(table) == offsets
    assert table_offsets(table) == lake_offsets(settings, qn)
    assert publish_lake(settings).rows == 0


def test_status_says_how_far_the_iceberg_copy_is_behind(settings: Settings) -> None:
    from pipelines.cli.lakestatus import iceberg_line
    from pipelines.iceberg.status import publication_status

    lake = settings.lake_root
    assert publication_status(settings) is None  # never published: no catalog is created
    recorded_lake.land(lake, parts=2, upto=0.5)
    recorded_lake.compact_all(lake)
    publish_lake(settings)
    doc = publication_status(settings)
    assert doc["behind"] == 0 and len(doc["tables"]) == len(BRONZE_TABLES) + len(
        recorded_lake.TABLES
    )
    assert "all up to date" in iceberg_line(doc)
    recorded_lake.land_rest(lake, after=0.5)
    recorded_lake.compact_all(lake)
    doc = publication_status(settings)
    rows = {(r["layer"], r["table"]): r for r in doc["tables"]}
    typezoo = recorded_lake.by_partition()[("zoo.zoo.typezoo", 0)]
    assert rows[(BRONZE, "zoo.typezoo")]["offsets_behind"] == len(typezoo) - round(
        len(typezoo) * 0.5
    )
    assert rows[(SILVER, "zoo.typezoo")]["snapshots_behind"] == 1
    assert doc["behind"] > 0 and "behind the lake" in iceberg_line(doc)
    publish_lake(settings)
    assert publication_status(settings)["behind"] == 0


def test_processes_opening_a_new_catalog_at_once_all_succeed(settings: Settings) -> None:
    """Namespace creation races (pyiceberg checks, then inserts): every opener must succeed."""
    code = (
        "import sys; from pathlib import Path; from pipelines.config import Settings; "
        "from pipelines.iceberg.catalog import open_catalog; "
        "open_catalog(Settings(_env_file=None, home=Path(sys.argv[1])))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(settings.home)], env=env)
        for _ in range(6)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    assert {ns[0] for ns in open_catalog(settings).list_namespaces()} >= {BRONZE, SILVER}
