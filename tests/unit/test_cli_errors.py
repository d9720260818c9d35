"""User errors of the real ``changelake`` command with no stack: unused ports, an empty lake.

Each case runs the installed entry point as a subprocess and checks one clear line (plus at
most one hint line) on stderr, the exit status (2 bad usage, 1 runtime failure) and that no
traceback is printed; ``--debug`` and ``CHANGELAKE_DEBUG=1`` bring the traceback back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli_run import assert_clear_error, run, unused_ports

pytestmark = pytest.mark.unit


@pytest.fixture
def down_env(tmp_path: Path) -> dict[str, str]:
    """A home with no stack: every service port is one nothing listens on."""
    pg, kafka, ctrl, connect = unused_ports(4)
    return {
        "CHANGELAKE_HOME": str(tmp_path / "home"),
        "CHANGELAKE_PG_PORT": str(pg),
        "CHANGELAKE_KAFKA_PORT": str(kafka),
        "CHANGELAKE_KAFKA_CONTROLLER_PORT": str(ctrl),
        "CHANGELAKE_CONNECT_PORT": str(connect),
        "CHANGELAKE_TABLES": "shop.products,shop.orders",
    }


@pytest.mark.parametrize(
    ("args", "service", "port_var"),
    [
        (["land"], "Kafka", "CHANGELAKE_KAFKA_PORT"),
        (["workload", "--duration", "1"], "PostgreSQL", "CHANGELAKE_PG_PORT"),
        (["shop", "create"], "PostgreSQL", "CHANGELAKE_PG_PORT"),
    ],
)
def test_stack_down_names_the_service_and_address_fast(down_env, args, service, port_var) -> None:
    t0 = time.monotonic()
    res = run(args, down_env)
    took = time.monotonic() - t0
    err = assert_clear_error(
        res, 1, f"{service} at 127.0.0.1:{down_env[port_var]}", "changelake up"
    )
    assert "not reachable" in err
    assert took < 15, f"{args} took {took:.1f}s to notice the stack is down"


def test_status_with_the_stack_down_names_every_address(down_env) -> None:
    res = run(["status"], down_env)
    assert_clear_error(
        res,
        1,
        "the stack is down",
        f"PostgreSQL at 127.0.0.1:{down_env['CHANGELAKE_PG_PORT']}",
        f"Kafka at 127.0.0.1:{down_env['CHANGELAKE_KAFKA_PORT']}",
        f"Kafka Connect at 127.0.0.1:{down_env['CHANGELAKE_CONNECT_PORT']}",
        "changelake up",
    )
    # the lake view needs no service: still shown (rich wraps it beside a long lake path)
    assert "Kafka unreachable: lag" in " ".join(res.stdout.split())


def test_compact_with_nothing_landed_says_to_land_first(down_env) -> None:
    assert_clear_error(run(["compact"], down_env), 1, "nothing to compact", "changelake land")


@pytest.mark.parametrize(
    "args",
    [
        ["as-of", "shop.nope", "2026-01-01T00:00:00+00:00"],
        ["history", "shop.nope", "1"],
        ["compact", "shop.nope"],
        ["land", "--table", "shop.nope"],
        ["retain", "shop.nope"],
    ],
)
def test_unknown_table_is_bad_usage_listing_the_captured_ones(down_env, args) -> None:
    err = assert_clear_error(run(args, down_env), 2, "unknown table shop.nope")
    assert "shop.products, shop.orders" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["as-of", "shop.products", "yesterday"], "not an ISO-8601 instant"),
        (["as-of", "shop.products", "2026-01-01T00:00:00+00:00", "--format", "xml"], "--format"),
        (
            ["as-of", "shop.products", "2026-01-01T00:00:00+00:00", "--format", "parquet"],
            "--output",
        ),
        (["as-of", '"shop.products', "2026-01-01T00:00:00+00:00"], "unbalanced double quote"),
        (["as-of", "shop.products"], "Missing argument"),
        (["history", "shop.products", "1", "--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_usage_exits_2_with_one_line(down_env, args, fragment) -> None:
    assert_clear_error(run(args, down_env), 2, fragment)


def test_a_bad_setting_is_named(down_env) -> None:
    env = {**down_env, "CHANGELAKE_PG_PORT": "five"}
    assert_clear_error(run(["status"], env), 2, "CHANGELAKE_PG_PORT")


def test_nothing_landed_is_a_runtime_error_with_the_next_step(down_env) -> None:
    res = run(["as-of", "shop.products", "2026-01-01T00:00:00+00:00"], down_env)
    assert_clear_error(res, 1, "shop.products", "changelake land")


def test_debug_flag_and_env_show_the_traceback(down_env) -> None:
    args = ["land", "--table", "shop.nope"]
    for res in (
        run(["--debug", *args], down_env),
        run(args, {**down_env, "CHANGELAKE_DEBUG": "1"}),
    ):
        assert res.returncode != 0
        assert "Traceback" in res.stderr and "BadInput" in res.stderr, res.stderr


def test_known_library_exceptions_become_user_errors(monkeypatch) -> None:
    import psycopg
    from kafka.errors import KafkaTimeoutError

    from pipelines.bronze.source import LakeSourceMismatch
    from pipelines.cli.errors import translate

    monkeypatch.setenv("CHANGELAKE_KAFKA_PORT", "1234")
    monkeypatch.setenv("CHANGELAKE_PG_PORT", "4321")
    kafka = translate(KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1234"))
    assert kafka.exit_code == 1 and kafka.message.startswith("Kafka at 127.0.0.1:1234 ")
    pg = translate(psycopg.OperationalError("connection failed: port 4321 failed: refused\nmore"))
    assert (
        pg.message == "PostgreSQL at 127.0.0.1:4321: connection failed: port 4321 failed: refused"
    )
    assert "changelake up" in pg.hint
    mismatch = translate(LakeSourceMismatch("the lake at /l was landed from Kafka cluster A"))
    assert mismatch.exit_code == 1 and "cluster A" in mismatch.message
    assert translate(RuntimeError("a bug")) is None


def test_a_bug_is_one_line_that_points_at_debug() -> None:
    import typer
    from typer.testing import CliRunner

    from pipelines.cli.errors import Group

    app = typer.Typer(cls=Group)

    @app.callback()
    def _root(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @app.command()
    def boom() -> None:
        raise RuntimeError("kaput\nsecond line")

    res = CliRunner().invoke(app, ["boom"])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 2, res.output
    assert lines[0] == "error: internal error: RuntimeError: kaput" and "--debug" in lines[1]
    res = CliRunner().invoke(app, ["--debug", "boom"])
    assert isinstance(res.exception, RuntimeError)  # re-raised: typer prints the traceback


def test_publish_with_nothing_landed_says_to_land_first(down_env) -> None:
    assert_clear_error(run(["publish"], down_env), 1, "nothing to publish", "changelake land")


def test_publish_to_an_unreachable_catalog_names_it_without_the_password(down_env) -> None:
    (port,) = unused_ports(1)
    env = down_env | {
        "CHANGELAKE_ICEBERG_CATALOG_URI": f"postgresql+psycopg://cl:s3kr1t@127.0.0.1:{port}/cat"
    }
    err = assert_clear_error(
        run(["publish"], env), 1, "the Iceberg catalog", f"127.0.0.1:{port}/cat", "CATALOG_URI"
    )
    assert "s3kr1t" not in err


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["publish"], "commit to Iceberg"),
    ],
)
def test_parquet_lake_commands_on_an_iceberg_lake_say_so_in_one_line(down_env, args, hint) -> None:
    env = {**down_env, "CHANGELAKE_LAKE_FORMAT": "iceberg"}
    err = assert_clear_error(run(args, env), 1, "this lake is stored in Iceberg", hint)
    assert f"changelake {args[0]}" in err


def test_retain_on_an_iceberg_lake_runs_the_retention_rule_on_its_silver(down_env) -> None:
    env = {**down_env, "CHANGELAKE_LAKE_FORMAT": "iceberg"}
    done = run(["retain", "--keep", "1"], env)
    assert done.returncode == 0, done.stdout + done.stderr  # nothing compacted: nothing to expire


def test_history_on_an_iceberg_lake_with_nothing_landed_says_so_in_one_line(down_env) -> None:
    env = {**down_env, "CHANGELAKE_LAKE_FORMAT": "iceberg"}
    assert_clear_error(run(["history", "shop.orders", "1"], env), 1, "no Iceberg bronze events")


def test_a_bad_lander_member_is_named(down_env) -> None:
    env = {**down_env, "CHANGELAKE_LANDER_MEMBER": "2/2", "CHANGELAKE_LAKE_FORMAT": "iceberg"}
    assert_clear_error(run(["land"], env), 2, "CHANGELAKE_LANDER_MEMBER", "2/2")
    assert_clear_error(run(["run"], {**env, "CHANGELAKE_LANDER_MEMBER": "x"}), 2, "LANDER_MEMBER")
