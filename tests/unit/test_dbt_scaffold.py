"""``changelake dbt scaffold`` without services: a silver snapshot written by silver's own
``publish`` stands in for a compacted table (real Parquet, real manifest), and the generated
project is parsed, compiled and (its silver models) built by the real dbt.

Odd names (quotes, spaces, dots, a keyword, unicode) must come out quoted everywhere; a second
run changes nothing; an edited file is kept unless ``force``; a key-less table gets staging
only; tables that a hand-written source reads (the demo shop) are left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_env, dbt_executable
from pipelines.dbtscaffold import ScaffoldError, scaffold
from pipelines.dbtscaffold.render import jinja_str, names
from pipelines.defs.dbt_assets import ChangelakeDbtTranslator
from pipelines.naming import QualifiedName
from pipelines.silver import snapshots

pytestmark = pytest.mark.unit

ODD = QualifiedName('Odd "Sch.ema"', "we.ird tab")
KEYLESS = QualifiedName("plain", "bronze_log")  # "bronze" in a silver source's name
ODD_COLUMNS = {
    "Id Part": [1, 1, 2],
    'a"b': [1, 2, 3],
    "select": ["x", "y", "z"],
    "Ünï": [None, 1.5, 2.0],
}


def _silver(lake: Path, table: QualifiedName, data: dict, key: list[str]) -> None:
    """A published silver snapshot of ``data`` (plus silver's kept metadata columns)."""
    n = len(next(iter(data.values())))
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    arrow = pa.table({**data, "_source_ts": [ts] * n, "_commit_lsn": list(range(n))})
    prev = snapshots.current(lake, table)
    sid = snapshots.new_snapshot_id(prev, datetime.now(UTC))
    staging = snapshots.staging_dir(lake, table, sid)
    pq.write_table(arrow, staging / "part-0.parquet")
    manifest = snapshots.Manifest(
        snapshot_id=sid, table=str(table), key=key, created_at=ts.isoformat(),
        parent=prev.snapshot_id if prev else None, watermark_lsn=n, watermark_ts=ts.isoformat(),
        rows=n, events_applied=n, full=True,
        schema=[{"name": f.name, "type": str(f.type)} for f in arrow.schema],
    )  # fmt: skip
    snapshots.publish(lake, table, staging, manifest)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Settings, Path]:
    lake = tmp_path / "lake"
    _silver(lake, ODD, ODD_COLUMNS, ["Id Part", 'a"b'])
    _silver(lake, KEYLESS, {"msg": ["a", "a"]}, [])
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    tables = ",".join(str(t) for t in (ODD, KEYLESS, QualifiedName("shop", "orders")))
    settings = Settings(
        home=tmp_path / "home", lake=lake, warehouse=tmp_path / "wh.duckdb", tables=tables
    )
    return settings, project


def _folder(project: Path, schema_part: str) -> Path:
    return project / "models" / "changelake_scaffold" / schema_part


def _dbt(settings: Settings, project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **dbt_env(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(  # noqa: S603
        [dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_jinja_str_survives_jinja() -> None:
    import jinja2

    for text in ['a"b', "it's", "back\\slash", "Ünï 𝔘", "x}}y{%", "new\nline"]:
        assert jinja2.Template("{{ " + jinja_str(text) + " }}").render() == text


def test_odd_names_are_quoted_and_the_silver_models_build(setup) -> None:
    settings, project = setup
    report = scaffold(settings, project)
    assert [s.table for s in report.tables] == [ODD, KEYLESS]  # shop.orders: hand-written
    n = names(ODD)
    folder = _folder(project, n["silver"].split("__", 1)[1])
    sql = (folder / f"{n['staging']}.sql").read_text()
    for quoted in ['"Id Part"', '"a""b"', '"select"', '"Ünï"']:
        assert quoted in sql
    assert (folder / f"{n['versions']}.sql").is_file()
    assert not (_folder(project, "plain") / "int_plain__bronze_log_versions.sql").exists()
    assert any("plain.bronze_log" in note and "no primary key" in note for note in report.notes)
    assert not (project / "models" / "changelake_scaffold" / "shop").exists()

    parsed = _dbt(settings, project, "compile", "--select", "changelake_scaffold")
    assert parsed.returncode == 0, parsed.stdout[-4000:]
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    translator = ChangelakeDbtTranslator(settings.captured)
    seen = {
        translator.source_table(translator.get_resource_props(manifest, uid))
        for uid, src in manifest["sources"].items()
        if src["source_name"].startswith("changelake_")
    }  # Dagster maps each generated source onto its table's lake asset
    assert seen == {("silver", ODD), ("bronze", ODD), ("silver", KEYLESS)}
    built = _dbt(settings, project, "build", "--select", f"{n['staging']} stg_plain__bronze_log")
    assert built.returncode == 0, built.stdout[-4000:]
    assert "PASS=" in built.stdout and "ERROR=0" in built.stdout
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(f'SELECT "Id Part", "a""b", "select" FROM staging.{n["staging"]}')  # noqa: S608
        assert sorted(rows.fetchall()) == [(1, 1, "x"), (1, 2, "y"), (2, 3, "z")]
        assert con.execute("SELECT count(*) FROM staging.stg_plain__bronze_log").fetchone()[0] == 2


def test_duplicate_composite_key_fails_the_generated_test(setup) -> None:
    settings, project = setup
    _silver(settings.lake_root, ODD, {**ODD_COLUMNS, 'a"b': [1, 1, 3]}, ["Id Part", 'a"b'])
    scaffold(settings, project)
    built = _dbt(settings, project, "build", "--select", names(ODD)["staging"])
    assert built.returncode == 1 and "unique_combination" in built.stdout


def test_rerun_is_idempotent_and_edited_files_are_kept_unless_forced(setup) -> None:
    settings, project = setup
    first = scaffold(settings, project)
    assert {f.status for f in first.files} == {"written"}
    again = scaffold(settings, project)
    assert {f.status for f in again.files} == {"unchanged"}

    edited = _folder(project, "plain") / "stg_plain__bronze_log.sql"
    edited.write_text(edited.read_text() + "-- mine\n")
    _silver(settings.lake_root, KEYLESS, {"msg": ["a"], "level": [3]}, [])  # a new column
    third = {f.path.name: f.status for f in scaffold(settings, project).files}
    assert third["stg_plain__bronze_log.sql"].startswith("kept")
    assert edited.read_text().endswith("-- mine\n")
    assert third["stg_plain__bronze_log.yml"] == "updated"  # unedited: follows the new column
    assert '"level"' not in edited.read_text()
    forced = {f.path.name: f.status for f in scaffold(settings, project, force=True).files}
    assert forced["stg_plain__bronze_log.sql"].startswith("overwritten")
    assert '"level"' in edited.read_text() and "-- mine" not in edited.read_text()


def test_user_errors(setup, tmp_path: Path) -> None:
    settings, project = setup
    with pytest.raises(ScaffoldError, match="no dbt_project.yml"):
        scaffold(settings, tmp_path)
    with pytest.raises(ScaffoldError, match="no captured tables"):
        scaffold(settings.model_copy(update={"tables": ()}), project)
    shutil.rmtree(project / "macros")
    with pytest.raises(ScaffoldError, match="scd2_from_cdc"):
        scaffold(settings, project)


def test_uncompacted_table_is_reported_not_scaffolded(setup) -> None:
    settings, project = setup
    later = settings.model_copy(update={"tables": ("fresh.table_x",)})
    report = scaffold(later, project)
    assert (
        report.files == [] and "fresh.table_x" in report.notes[0] and "compact" in report.notes[0]
    )


def test_cli_prints_what_it_wrote_and_errors_in_one_line(setup) -> None:
    settings, project = setup
    cli = str(Path(sys.executable).with_name("changelake"))
    env = {
        **os.environ,
        "CHANGELAKE_HOME": str(settings.home),
        "CHANGELAKE_LAKE": str(settings.lake_root),
        "CHANGELAKE_TABLES": ",".join(settings.tables),
    }
    run = [cli, "dbt", "scaffold", "--project-dir", str(project)]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert ok.returncode == 0, ok.stderr
    assert "written  models/changelake_scaffold/plain/stg_plain__bronze_log.sql" in ok.stdout
    assert "note: plain.bronze_log: no primary key" in ok.stdout
    bad = subprocess.run(  # noqa: S603
        [*run[:3], "--project-dir", str(settings.home)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: ") and "no dbt_project.yml" in bad.stderr


def test_a_table_with_a_hand_written_source_is_left_alone(setup) -> None:
    settings, project = setup
    mine = project / "models" / "mine" / "_sources.yml"
    mine.parent.mkdir()
    meta = {"changelake_table": str(ODD)}
    mine.write_text(
        json.dumps(
            {"version": 2, "sources": [{"name": "x", "tables": [{"name": "t", "meta": meta}]}]}
        )
    )
    report = scaffold(settings, project)
    assert [s.table for s in report.tables] == [KEYLESS]
    assert set(report.hand_written) == {ODD, QualifiedName("shop", "orders")}


def test_names_dbt_or_jinja_cannot_take_are_skipped_and_said(setup) -> None:
    settings, project = setup
    lake = settings.lake_root
    _silver(lake, QualifiedName("plain", "Bronze_Log"), {"msg": ["a"]}, [])  # same in DuckDB
    _silver(lake, QualifiedName("plain", "t{x}"), {"msg": ["a"]}, [])
    _silver(lake, QualifiedName("plain", "cols"), {"{{ c }}": [1]}, [])
    tables = (str(KEYLESS), 'plain."Bronze_Log"', 'plain."t{x}"', "plain.cols")
    report = scaffold(settings.model_copy(update={"tables": tables}), project)
    assert [s.table for s in report.tables] == [KEYLESS]
    skipped = [n for n in report.notes if "skipped" in n]
    assert len(skipped) == 3 and "clash" in skipped[0] and "Jinja" in skipped[1] + skipped[2]
