"""The small-file rewrite of Iceberg bronze (pipelines/iceberg/rewrite.py) on real pyiceberg.

The lake is the real connector's recorded messages landed in many small batches, each
published as its own Iceberg append (one small file each); the rewrite must keep every row
and every offset, the positions recovery reads, and survive a SIGKILL at each of its states.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import recorded_lake
from iceberg_checks import assert_bronze_equal, iceberg_table, lake_offsets, table_offsets

from pipelines.config import Settings
from pipelines.iceberg.expiry import expire_appended
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.offsets import committed_offsets
from pipelines.iceberg.publish import publish_lake
from pipelines.iceberg.rewrite import REWRITE_KEY, SmallFiles, rewrite_small_files
from pipelines.naming import QualifiedName

pytestmark = pytest.mark.unit
QN = QualifiedName("zoo", "typezoo")
EVERY_FILE = SmallFiles(small_bytes=2**30, min_files=3)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", iceberg_rewrite_min_files=0)


def _files(settings: Settings) -> list[str]:
    table = iceberg_table(settings, BRONZE, QN)
    return sorted(t.file.file_path for t in table.scan().plan_files())


def _many_small_files(settings: Settings) -> None:
    recorded_lake.land(settings.lake_root, parts=6, upto=0.6)
    publish_lake(settings, max_rows=1)  # one Iceberg append (and file) per batch


def test_a_rewrite_keeps_every_row_offset_and_position(settings: Settings) -> None:
    _many_small_files(settings)
    table = iceberg_table(settings, BRONZE, QN)
    before, positions = _files(settings), committed_offsets(table)
    assert len(before) >= 4
    done = rewrite_small_files(table, EVERY_FILE)
    assert done.commits == 1 and done.files_in == len(before) and done.files_out == 1
    assert len(_files(settings)) == 1
    table = iceberg_table(settings, BRONZE, QN)
    assert table.current_snapshot().summary[REWRITE_KEY] == "small-files"
    assert committed_offsets(table) == positions
    assert table_offsets(table) == lake_offsets(settings, QN)
    assert_bronze_equal(settings, QN)
    # publishing goes on from the rewrite's positions: every later event once
    recorded_lake.land_rest(settings.lake_root, after=0.6)
    publish_lake(settings, max_rows=1)
    table = iceberg_table(settings, BRONZE, QN)
    assert table_offsets(table) == lake_offsets(settings, QN)
    assert max(table_offsets(table).values()) == 1
    assert_bronze_equal(settings, QN)


def test_expiry_deletes_the_replaced_files_once_no_snapshot_needs_them(
    settings: Settings,
) -> None:
    _many_small_files(settings)
    before = _files(settings)
    rewrite_small_files(iceberg_table(settings, BRONZE, QN), EVERY_FILE)
    table = iceberg_table(settings, BRONZE, QN)
    expired, deleted = expire_appended(table, keep_last=1)
    assert expired and deleted == len(before)
    assert not any(Path(p.removeprefix("file://")).exists() for p in before)
    assert_bronze_equal(settings, QN)


def test_publish_rewrites_once_a_table_has_enough_small_files(settings: Settings) -> None:
    settings = settings.model_copy(update={"iceberg_rewrite_min_files": 3})
    report = publish_lake(settings, max_rows=1)
    assert not report.tables  # nothing landed yet
    _many_small_files(settings)
    bronze = iceberg_table(settings, BRONZE, QN)
    assert len(_files(settings)) < len(bronze.snapshots())
    assert_bronze_equal(settings, QN)


CHILD = """
import sys
from pathlib import Path
from pipelines.config import Settings
from pipelines.iceberg.catalog import load_table, open_catalog
from pipelines.iceberg.names import BRONZE
from pipelines.iceberg.rewrite import SmallFiles, rewrite_small_files
from pipelines.naming import QualifiedName
settings = Settings(_env_file=None, home=Path(sys.argv[1]))
table = load_table(open_catalog(settings), BRONZE, QualifiedName("zoo", "typezoo"))
rewrite_small_files(table, SmallFiles(small_bytes=2**30, min_files=3))
"""


@pytest.mark.parametrize("state", ["checking", "staged", "committed"])
def test_a_rewrite_killed_at_any_state_loses_and_repeats_nothing(
    settings: Settings, state: str
) -> None:
    _many_small_files(settings)
    before = _files(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    env["CHANGELAKE_CRASH_AT"] = f"publish_rewrite_{state}"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(settings.home)], env=env, check=False)
    assert proc.returncode == -9
    after = _files(settings)
    assert (after == before) == (state != "committed")
    assert_bronze_equal(settings, QN)
    rewrite_small_files(iceberg_table(settings, BRONZE, QN), EVERY_FILE)
    assert len(_files(settings)) == 1
    table = iceberg_table(settings, BRONZE, QN)
    assert table_offsets(table) == lake_offsets(settings, QN)
    assert_bronze_equal(settings, QN)


PUBLISHER = """
import sys
from pathlib import Path
from pipelines.config import Settings
from pipelines.iceberg.publish import publish_lake
publish_lake(Settings(_env_file=None, home=Path(sys.argv[1])), max_rows=1)
"""


def test_publishers_racing_with_rewrites_land_every_event_once(settings: Settings) -> None:
    recorded_lake.land(settings.lake_root, parts=8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    env["CHANGELAKE_ICEBERG_REWRITE_MIN_FILES"] = "3"
    procs = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, str(settings.home)], env=env)
        for _ in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    table = iceberg_table(settings, BRONZE, QN)
    rewrites = [s for s in table.snapshots() if REWRITE_KEY in (s.summary or {})]
    assert rewrites, "no rewrite ran between the appends"
    assert table_offsets(table) == lake_offsets(settings, QN)
    assert max(table_offsets(table).values()) == 1
    assert_bronze_equal(settings, QN)
