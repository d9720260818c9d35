"""``changelake dbt scaffold`` acceptance: a schema the project has never seen, through the real
stack (PostgreSQL, Debezium, Kafka, bronze, silver) into generated dbt models that build.

The schema has a composite-key table with numeric, timestamptz, jsonb, text[] and a TOAST-sized
text (updated elsewhere, so Debezium sends the unchanged-TOAST placeholder), a key-less table
with an odd name, and a table whose columns are an SQL keyword and a name with a quote. The
scaffold goes into a copy of dbt_project/ (the repo stays clean); ``dbt build --select
changelake_scaffold`` runs its tests, and the SCD2 model's current rows must be PostgreSQL's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.bronze.lander import land
from pipelines.config import Settings
from pipelines.dbtenv import DBT_PROJECT_DIR, dbt_env, dbt_executable
from pipelines.dbtscaffold import scaffold
from pipelines.shop.demo import wait_until_streamed
from pipelines.silver import bronze_io, compact_all, current

pytestmark = pytest.mark.integration

# notes is stored EXTERNAL (out of line, uncompressed), so 9 kB is TOASTed whatever it holds
DDL = '''
CREATE SCHEMA scaf_crm;
CREATE TABLE scaf_crm.accounts (
    region text NOT NULL,
    account_no int NOT NULL,
    balance numeric(14, 4),
    opened_at timestamptz,
    profile jsonb,
    tags text[],
    notes text,
    PRIMARY KEY (region, account_no)
);
ALTER TABLE scaf_crm.accounts ALTER COLUMN notes SET STORAGE EXTERNAL;
CREATE TABLE scaf_crm."Event Log" (happened_at timestamptz, message text);
CREATE TABLE scaf_crm.notes (id bigint PRIMARY KEY, "select" text, "odd ""col""" int);
INSERT INTO scaf_crm.accounts
SELECT CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, i, i * 1.5, '2026-01-01'::timestamptz
       + i * interval '1 hour', jsonb_build_object('n', i, 'tags', jsonb_build_array('a', i)),
       ARRAY['t' || i, 'all'], CASE WHEN i <= 3 THEN repeat('x', 9000) || i ELSE 'short ' || i END
FROM generate_series(1, 12) AS i;
INSERT INTO scaf_crm.notes SELECT i, 'kw ' || i, i FROM generate_series(1, 4) AS i;
'''
EVENTS = """INSERT INTO scaf_crm."Event Log" SELECT now(), 'event ' || i FROM generate_series(1, 5) AS i"""
CHANGES = """
UPDATE scaf_crm.accounts SET balance = balance + 100 WHERE account_no IN (1, 2, 5);
UPDATE scaf_crm.accounts SET tags = ARRAY['moved'], profile = '{"moved": true}'
 WHERE account_no = 3;
DELETE FROM scaf_crm.accounts WHERE account_no IN (4, 7);
INSERT INTO scaf_crm.accounts VALUES ('apac', 1, 0.0001, now(), '[]', '{}', 'new');
UPDATE scaf_crm.notes SET "select" = 'changed' WHERE id = 2;
DELETE FROM scaf_crm.notes WHERE id = 4;
INSERT INTO scaf_crm."Event Log" VALUES (now(), 'after capture');
"""
TABLES = ("scaf_crm.accounts", 'scaf_crm."Event Log"', "scaf_crm.notes")


def _counts(stack) -> dict[str, int]:  # noqa: ANN001
    with stack.pg() as pg:
        return {
            t: pg.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in TABLES
        }


def _silver_counts(settings: Settings, tables) -> dict[str, int]:  # noqa: ANN001
    out = {}
    for qn in tables:
        m = current(settings.lake_root, qn)
        out[str(qn)] = m.rows if m else -1
    return out


def _converge(stack, settings: Settings, tables, timeout: float = 240) -> None:  # noqa: ANN001
    """Land and compact until silver holds as many rows as PostgreSQL."""
    deadline = time.monotonic() + timeout
    want = {str(q): n for q, n in zip(tables, _counts(stack).values(), strict=True)}
    while True:
        wait_until_streamed(settings)
        land(settings, until_caught_up=True)
        compact_all(settings)
        got = _silver_counts(settings, tables)
        if got == want:
            return
        assert time.monotonic() < deadline, f"silver {got} never reached PostgreSQL's {want}"
        time.sleep(3)


def _dbt(project: Path, settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**dbt_env(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "HOME": str(project)}
    return subprocess.run(  # noqa: S603
        [dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_scaffolded_models_build_and_scd2_current_rows_equal_postgres(
    stack, tmp_path: Path
) -> None:
    # existing rows of the keyed tables arrive through the incremental snapshot that capture
    # starts; a key-less table gets none that way, so its rows are inserted after capture
    tables = stack.capture(DDL, *TABLES)
    with stack.pg() as pg:
        pg.execute(EVENTS)
    fields = stack.settings.model_dump()
    fields.update(lake=tmp_path / "lake", warehouse=tmp_path / "wh.duckdb", tables=TABLES)
    settings = Settings(**fields)
    _converge(stack, settings, tables)
    with stack.pg() as pg:
        pg.execute(CHANGES)  # one transaction: updates (TOAST placeholders), deletes, inserts
    _converge(stack, settings, tables)

    bronze_src = bronze_io.parquet_source(bronze_io.table_files(settings.lake_root, tables[0]))
    placeholders = duckdb.sql(
        f"SELECT count(*) FROM {bronze_src}"  # noqa: S608
        " WHERE _op = 'u' AND list_contains(_unavailable, 'notes')"
    ).fetchone()[0]
    assert placeholders == 3  # Debezium sent unchanged-TOAST placeholders: SCD2 must fill them

    project = tmp_path / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    report = scaffold(settings, project)
    assert [s.key for s in report.tables] == [("region", "account_no"), (), ("id",)]
    assert any("Event Log" in n and "no primary key" in n for n in report.notes)
    folder = project / "models" / "changelake_scaffold" / "scaf_crm"
    assert (folder / "int_scaf_crm__accounts_versions.sql").is_file()
    assert not list(folder.glob("int_*Event*"))  # key-less: staging only

    proc = _dbt(project, settings, "build", "--select", "changelake_scaffold")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "ERROR=0" in proc.stdout and "PASS=" in proc.stdout

    with stack.pg() as pg:
        pg_rows = pg.execute(
            "SELECT region, account_no, balance, opened_at, profile::text, tags, notes"
            " FROM scaf_crm.accounts ORDER BY 1, 2"
        ).fetchall()
        pg_notes = pg.execute('SELECT id, "select", "odd ""col""" FROM scaf_crm.notes ORDER BY 1')
        pg_notes = pg_notes.fetchall()
        pg_events = pg.execute('SELECT count(*) FROM scaf_crm."Event Log"').fetchone()[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        per_key = con.execute(
            "SELECT region, account_no, count(*) FROM intermediate.int_scaf_crm__accounts_versions"
            " WHERE is_current GROUP BY ALL HAVING count(*) <> 1"
        ).fetchall()
        assert per_key == []
        scd2 = con.execute(
            "SELECT region, account_no, balance, opened_at, profile, tags, notes"
            " FROM intermediate.int_scaf_crm__accounts_versions WHERE is_current ORDER BY 1, 2"
        ).fetchall()
        versions = con.execute(
            "SELECT count(*) FROM intermediate.int_scaf_crm__accounts_versions"
            " WHERE account_no = 1 AND region = 'us'"
        ).fetchone()[0]
        notes = con.execute(
            'SELECT id, "select", "odd ""col""" FROM intermediate.int_scaf_crm__notes_versions'
            " WHERE is_current ORDER BY 1"
        ).fetchall()
        staged = con.execute("SELECT count(*) FROM staging.stg_scaf_crm__accounts").fetchone()[0]
        events = con.execute(
            'SELECT count(*) FROM staging."stg_scaf_crm__Z0Eventx20xLog"'
        ).fetchone()[0]
    assert len(scd2) == len(pg_rows) == staged == 11
    for got, want in zip(scd2, pg_rows, strict=True):
        assert got[:2] == want[:2]
        assert Decimal(got[2]) == want[2]
        assert got[3] == want[3]
        assert json.loads(got[4]) == json.loads(want[4])
        assert list(got[5]) == list(want[5])
        assert got[6] == want[6]  # the TOAST text survived the updates that did not touch it
    assert versions == 2  # the snapshot read, then the balance update
    assert notes == pg_notes
    assert events == pg_events == 6

    again = scaffold(settings, project)  # idempotent on a real project
    assert {f.status for f in again.files} == {"unchanged"}
