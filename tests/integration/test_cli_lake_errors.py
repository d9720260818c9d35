"""The real ``changelake`` command on a lake landed from the real stack: user errors that need a
lake (key values, ``--where``, instants, a lake from another Kafka cluster) and the query output.

One table is captured, changed, landed and compacted with the CLI itself (subprocesses), once
for the module; every case then runs the installed entry point and checks exit status, at most
two stderr lines and no traceback (see tests/cli_run.py).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cli_run import assert_clear_error, run

from pipelines.bronze.layout import LANDED
from pipelines.bronze.source import SOURCE_FILE
from pipelines.shop.demo import wait_until_streamed

pytestmark = pytest.mark.integration

TABLE = "clierr.items"
LONG = "n" * 300 + "END"


@pytest.fixture(scope="module")
def lake_env(stack, tmp_path_factory) -> dict[str, str]:
    stack.capture(
        "CREATE SCHEMA IF NOT EXISTS clierr; CREATE TABLE clierr.items "
        "(id int PRIMARY KEY, name text, note text, price numeric(10,2))",
        TABLE,
    )
    with stack.pg() as conn:
        conn.execute(
            "INSERT INTO clierr.items VALUES (1, 'a', 'short', 1.00), (2, 'b', %s, 2)", [LONG]
        )
        conn.execute("UPDATE clierr.items SET price = 1.50 WHERE id = 1")
        conn.execute("UPDATE clierr.items SET name = 'z', price = 3 WHERE id = 1")
        conn.execute("DELETE FROM clierr.items WHERE id = 2")
    wait_until_streamed(stack.settings)  # every change and its transaction END is in Kafka
    env = {k: v for k, v in os.environ.items() if k.startswith("CHANGELAKE_")}
    env.update(
        CHANGELAKE_LAKE=str(tmp_path_factory.mktemp("cli") / "lake"), CHANGELAKE_TABLES=TABLE
    )
    for args in (["land"], ["compact"]):
        res = run(args, env, timeout=300)
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return env


def test_history_key_of_the_wrong_type_or_count(lake_env) -> None:
    assert_clear_error(run(["history", TABLE, "abc"], lake_env), 2, "key column id", "'abc'")
    err = assert_clear_error(run(["history", TABLE, "1", "2"], lake_env), 2, "1-column key (id)")
    assert "got 2 value(s)" in err


def test_where_naming_a_missing_column(lake_env) -> None:
    res = run(["as-of", TABLE, "2100-01-01T00:00:00+00:00", "--where", "nope > 1"], lake_env)
    assert_clear_error(res, 2, "--where", '"nope" not found')


def test_a_lake_from_another_kafka_cluster(lake_env, tmp_path: Path) -> None:
    other = tmp_path / "lake"
    shutil.copytree(lake_env["CHANGELAKE_LAKE"], other)
    (other / LANDED / SOURCE_FILE).write_bytes(orjson.dumps({"kafka_cluster_id": "elsewhere"}))
    res = run(["land"], {**lake_env, "CHANGELAKE_LAKE": str(other)})
    assert_clear_error(res, 1, "landed from Kafka cluster elsewhere", "CHANGELAKE_LAKE")


def test_instants_before_the_history_and_without_a_zone(lake_env) -> None:
    res = run(["as-of", TABLE, "2000-01-01T00:00:00+00:00"], lake_env)
    assert res.returncode == 0 and res.stdout == "", res.stderr
    note = res.stderr.strip()
    assert note.startswith(f"note: the lake's history of {TABLE} starts at "), note
    start = datetime.fromisoformat(note.split(" starts at ")[1].split(";")[0])
    assert datetime(2000, 1, 1, tzinfo=UTC) < start <= datetime.now(UTC)
    res = run(["as-of", TABLE, "2100-01-01 00:00:00", "--format", "csv"], lake_env)
    assert res.returncode == 0, res.stderr
    assert "read as UTC: 2100-01-01T00:00:00+00:00" in res.stderr
    assert res.stdout.splitlines()[0].startswith("id,name,note,price")


def test_as_of_output_columns_limit_ellipsis_and_whole_values_in_a_file(lake_env, tmp_path) -> None:
    now = "2100-01-01T00:00:00+00:00"
    res = run(["as-of", TABLE, now], lake_env)
    assert res.returncode == 0 and "1 rows" in res.stdout, res.stderr  # row 2 was deleted
    res = run(["as-of", TABLE, now, "--columns", "name,id", "--limit", "5"], lake_env)
    header = next(line for line in res.stdout.splitlines() if "name" in line)
    assert header.index("name") < header.index("id") and "price" not in res.stdout
    before_delete = _commit_times(lake_env)[-1]  # id 1's last update, before id 2's delete
    res = run(["as-of", TABLE, before_delete], lake_env)
    assert res.returncode == 0 and "2 rows" in res.stdout, res.stderr
    assert all(len(line) <= 100 for line in res.stdout.splitlines()), res.stdout
    assert "…" in res.stdout and "END" not in res.stdout
    target = tmp_path / "t.txt"
    res = run(["as-of", TABLE, before_delete, "--output", str(target)], lake_env)
    assert res.returncode == 0 and LONG in target.read_text(), res.stderr


def test_history_one_line_per_version_with_what_changed(lake_env) -> None:
    res = run(["history", TABLE, "1"], lake_env)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 3, res.stdout
    assert "insert" in lines[0] and "name=a" in lines[0]
    assert "update" in lines[1] and "price: 1.00 → 1.50" in lines[1] and "name" not in lines[1]
    assert "name: a → z" in lines[2] and "price: 1.50 → 3.00" in lines[2]
    res = run(["history", TABLE, "1", "--columns", "name"], lake_env)
    assert "(no change in these columns)" in res.stdout and "price" not in res.stdout


def _commit_times(env: dict[str, str]) -> list[str]:
    res = run(["history", TABLE, "1", "--format", "csv", "--columns", "id"], env)
    assert res.returncode == 0, res.stderr
    header, *rows = [line.split(",") for line in res.stdout.strip().splitlines()]
    return [r[header.index("_source_ts")] for r in rows]
