"""The orphan-file sweep on real pyiceberg, a real SQLite catalog, local disk.

Orphans are made the ways a lake gets them: a committer process that dies in STAGED (its data
file, manifest and manifest list are written, the catalog never points at them) and a commit
that loses the race to another (its metadata file too). The sweep must delete exactly those,
only once they are old enough, and leave every snapshot reading the same rows.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cli_run import run
from iceberg_lake import CRASH_EXIT, SCHEMA, TABLE, make_batch, run_child, settings_for
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog
from pipelines.iceberg.commit import commit_batch
from pipelines.iceberg.duckdb_catalog import catalog_path
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.orphans import referenced_files, sweep, sweep_lake
from pipelines.lakeformat import remove_orphans
from pipelines.service.runner import RunOptions, Service

pytestmark = pytest.mark.unit


def reopen(home: Path) -> Table:
    return load_table(open_catalog(settings_for(home)), BRONZE, TABLE)


def states(table: Table) -> dict[int, list[tuple[int, str]]]:
    """Every snapshot's rows, sorted: what must not change."""
    table.refresh()
    return {
        s.snapshot_id: sorted(
            zip(
                *table.scan(snapshot_id=s.snapshot_id)
                .to_arrow()
                .select(["id", "payload"])
                .to_pydict()
                .values(),
                strict=True,
            )  # fmt: skip
        )
        for s in table.snapshots()
    }


def files_on_disk(table: Table) -> set[str]:
    root = Path(table.location().removeprefix("file://"))
    return {str(p) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, Table]:
    """A table with two committed batches, a committer killed in STAGED between them, and a
    commit that lost a race."""
    home = tmp_path / "home"
    table = ensure_table(open_catalog(settings_for(home)), BRONZE, TABLE, SCHEMA)
    commit_batch(table, make_batch(0, 0, 10))
    died = run_child(home, 0, [[10, 20]], crash_at="staged", crash_batch=0)
    assert died.returncode == CRASH_EXIT, died.stderr
    assert run_child(home, 0, [[10, 20]]).returncode == 0
    stale, winner = reopen(home), reopen(home)
    tx = stale.transaction()
    tx.append(make_batch(1, 0, 5).rows)
    commit_batch(winner, make_batch(1, 0, 5))
    with pytest.raises(CommitFailedException):
        tx.commit_transaction()
    return home, reopen(home)


def test_sweep_deletes_only_what_no_metadata_references(lake: tuple[Path, Table]) -> None:
    home, table = lake
    before_rows, before_offsets = states(table), off.committed_offsets(table)
    on_disk = files_on_disk(table)
    unreferenced = on_disk - referenced_files(table)
    # the killed committer's data file, manifest and manifest list, and the loser's data file
    # (pyiceberg deletes the loser's manifests itself); opening the table in a new process
    # leaves nothing (``ensure_table`` loads an existing table)
    names = sorted(Path(p).name for p in unreferenced)
    assert sum(n.endswith(".parquet") for n in names) == 2, names
    assert sum(n.endswith("-m0.avro") for n in names) == 1, names
    assert sum(n.startswith("snap-") for n in names) == 1, names
    assert len(names) == 4, names

    young = sweep(table, older_than=timedelta(hours=1))
    assert young.deleted == 0 and not young.orphans and young.too_young == len(unreferenced)
    assert files_on_disk(table) == on_disk

    dry = sweep(table, older_than=timedelta(0), delete=False)
    assert set(dry.orphans) == unreferenced and dry.deleted == 0
    assert dry.bytes == sum(Path(p).stat().st_size for p in unreferenced)

    done = sweep(table, older_than=timedelta(0))
    assert set(done.orphans) == unreferenced and done.deleted == len(unreferenced)
    assert files_on_disk(table) == on_disk - unreferenced
    fresh = reopen(home)
    assert states(fresh) == before_rows  # every snapshot reads the same rows
    assert off.committed_offsets(fresh) == before_offsets
    assert len(fresh.scan().to_arrow()) == 25

    again = sweep(fresh, older_than=timedelta(0))
    assert again.orphans == [] and again.listed == again.referenced


def test_lake_sweep_covers_every_table_and_the_parquet_lake_has_none(
    lake: tuple[Path, Table],
) -> None:
    home, table = lake
    settings = settings_for(home)
    assert remove_orphans(settings) == []  # default format: the Parquet lake
    iceberg = settings.model_copy(update={"lake_format": "iceberg"})
    kept = remove_orphans(iceberg)  # the setting's 24 h: all of them too young
    assert [r.table for r in kept] == [".".join(table.name())]
    assert kept[0].deleted == 0 and kept[0].too_young == 4
    swept = sweep_lake(iceberg, older_than=timedelta(0))
    assert swept[0].deleted == kept[0].too_young


def test_changelake_retain_deletes_the_orphans_once_old_enough(lake: tuple[Path, Table]) -> None:
    home, table = lake
    env = {
        "CHANGELAKE_HOME": str(home),
        "CHANGELAKE_LAKE_FORMAT": "iceberg",
        "CHANGELAKE_TABLES": "shop.orders",
    }
    unreferenced = files_on_disk(table) - referenced_files(table)
    young = run(["retain"], env)
    assert young.returncode == 0, young.stdout + young.stderr
    assert "deleted 0 orphan file(s) (0 bytes), 4 newer ones kept" in young.stdout + young.stderr
    assert files_on_disk(table) - referenced_files(reopen(home)) == unreferenced

    done = run(["retain", "--orphans-older-than-hours", "0"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bronze.shop__orders: deleted 4 orphan file(s)" in done.stdout + done.stderr
    assert files_on_disk(table) == referenced_files(reopen(home))


def test_run_maintain_stage_sweeps_the_iceberg_lake_and_writes_its_own_catalog(
    lake: tuple[Path, Table],
) -> None:
    home, table = lake
    settings = settings_for(home).model_copy(
        update={"lake_format": "iceberg", "iceberg_orphan_min_age_hours": 1e-9}
    )
    service = Service(settings, RunOptions(maintenance_every_s=0, metrics_port=None))
    service.maintain_step(threading.Event())
    assert files_on_disk(table) == referenced_files(reopen(home))
    assert catalog_path(settings).exists()  # the DuckDB file over the Iceberg tables
    assert not (settings.lake_root / "catalog.duckdb").exists()  # not the Parquet lake's


def test_expiry_deletes_the_manifest_lists_and_manifests_only_expired_snapshots_had(
    tmp_path: Path,
) -> None:
    """pyiceberg's expiry deletes no file; changelake's (``expiry``) deletes what only the
    expired snapshots referenced, so an always-on lander leaves no file per commit behind."""
    from pipelines.iceberg.expiry import expire_appended

    home = tmp_path / "home"
    table = ensure_table(open_catalog(settings_for(home)), BRONZE, TABLE, SCHEMA)
    for i in range(30):
        commit_batch(table, make_batch(0, i * 4, i * 4 + 4))
    rows = states(table)[table.current_snapshot().snapshot_id]
    expired, _ = expire_appended(table, keep_last=5)
    assert len(expired) == 25
    fresh = reopen(home)
    assert files_on_disk(fresh) == referenced_files(fresh)  # nothing left for the sweep
    assert states(fresh)[fresh.current_snapshot().snapshot_id] == rows
    assert len(fresh.snapshots()) == 5
