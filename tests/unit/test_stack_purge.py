"""``down --purge``: everything the home holds goes, except the jar cache, never through a link."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.bronze.lander import lake_lock
from pipelines.config import Settings
from pipelines.stack.procs import StackError
from pipelines.stack.purge import purge

pytestmark = pytest.mark.unit


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _home(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A home like the real one: jars -> a shared cache, every kind of state, an odd link."""
    home, shared, elsewhere = tmp_path / "home", tmp_path / "shared-jars", tmp_path / "elsewhere"
    _touch(shared / "kafka" / "kafka.jar")
    _touch(elsewhere / "precious.txt")
    home.mkdir()
    (home / "jars").symlink_to(shared, target_is_directory=True)
    for rel in (
        "lake/bronze/shop/orders/_commit_date=2026-01-01/t-p0-o00000000000000000000-"
        "00000000000000000009.1of1.parquet",
        "lake/_landed/_source.json",
        "lake/catalog.duckdb",
        "warehouse.duckdb",
        "warehouse.duckdb.wal",
        "dagster/dagster.yaml",
        "postgres/data/PG_VERSION",
        "kafka/data/meta.properties",
        "logs/connect.log",
        "run/.lock",
        "conf/connect.properties",
        "bench-backlogs/bench.json",
    ):
        _touch(home / rel)
    (home / "link-out").symlink_to(elsewhere, target_is_directory=True)
    return home, shared, elsewhere


def test_purge_leaves_only_the_jar_cache_and_follows_no_link(tmp_path: Path) -> None:
    home, shared, elsewhere = _home(tmp_path)
    report = purge(Settings(home=home))
    assert sorted(p.name for p in home.iterdir()) == ["jars"]
    assert (home / "jars").is_symlink() and (shared / "kafka" / "kafka.jar").read_text() == "x"
    assert (elsewhere / "precious.txt").exists()  # the link went, not its target
    names = sorted(p.name for p in report.removed)
    assert names == sorted(
        [
            "bench-backlogs",
            "conf",
            "dagster",
            "kafka",
            "lake",
            "link-out",
            "logs",
            "postgres",
            "run",
            "warehouse.duckdb",
            "warehouse.duckdb.wal",
        ]
    )
    assert report.kept == []


def test_jar_cache_as_a_real_directory_is_kept_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    jar = _touch(home / "jars" / "connect" / "a.jar")
    _touch(home / "logs" / "x.log")
    purge(Settings(home=home))
    assert jar.exists() and not (home / "logs").exists()


def test_keep_lake_keeps_lake_and_warehouse_and_says_so(tmp_path: Path) -> None:
    home, _, _ = _home(tmp_path)
    report = purge(Settings(home=home), keep_lake=True)
    assert sorted(p.name for p in home.iterdir()) == [
        "jars",
        "lake",
        "warehouse.duckdb",
        "warehouse.duckdb.wal",
    ]
    assert (home / "lake" / "_landed" / "_source.json").exists()
    kept = {p.name: why for p, why in report.kept}
    assert set(kept) == {"lake", "warehouse.duckdb"}
    assert "old Kafka cluster" in kept["lake"]


def test_lake_nested_in_a_folder_is_purged_around(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _touch(home / "data" / "lake" / "x.parquet")
    _touch(home / "data" / "scratch.txt")
    settings = Settings(home=home, lake=home / "data" / "lake")
    report = purge(settings, keep_lake=True)
    assert (home / "data" / "lake" / "x.parquet").exists()
    assert not (home / "data" / "scratch.txt").exists()
    assert home / "data" / "scratch.txt" in report.removed


def test_lake_and_warehouse_outside_the_home_are_kept_and_reported(tmp_path: Path) -> None:
    home, _, _ = _home(tmp_path)
    lake = _touch(tmp_path / "ext" / "lake" / "_landed" / "_source.json").parent.parent
    wh = _touch(tmp_path / "ext" / "wh.duckdb")
    report = purge(Settings(home=home, lake=lake, warehouse=wh))
    assert lake.is_dir() and wh.exists()
    kept = {p: why for p, why in report.kept}
    assert set(kept) == {lake, wh}
    assert "CHANGELAKE_LAKE" in kept[lake] and "never purged" in kept[lake]
    assert "CHANGELAKE_WAREHOUSE" in kept[wh]
    assert not (home / "lake").exists()  # the default lake dir inside the home still goes


def test_a_running_lander_stops_the_purge_before_anything_is_deleted(tmp_path: Path) -> None:
    home, _, _ = _home(tmp_path)
    with lake_lock(home / "lake"), pytest.raises(StackError, match="another lander"):
        purge(Settings(home=home))
    assert (home / "postgres" / "data" / "PG_VERSION").exists()
