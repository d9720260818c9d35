"""docker-compose.yml describes the same stack as the native runtime (no Docker engine here, so
the file is parsed and compared with the native config instead of being run)."""

from __future__ import annotations

import re

import pytest
import yaml

from pipelines.config import REPO_ROOT, Settings
from pipelines.stack.connector_config import load_template
from pipelines.stack.docker import compose_env

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def defaults() -> Settings:
    """The documented defaults (built per test: the unit conftest clears CHANGELAKE_* first)."""
    return Settings(_env_file=None)


def _default(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way compose would with nothing exported."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def test_official_images() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["connect"]["image"] == "quay.io/debezium/connect:3.6"


def test_register_mounts_the_same_connector_file_and_substitutes_every_placeholder() -> None:
    reg = SERVICES["register"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in reg["volumes"]}
    assert mounts["./connectors/postgres-connector.json"] in " ".join(reg["command"])
    assert "envsubst" in " ".join(reg["command"]) and "PUT" in " ".join(reg["command"])
    placeholders = set(
        re.findall(
            r"\$\{([A-Z0-9_]+)\}", (REPO_ROOT / "connectors/postgres-connector.json").read_text()
        )
    )
    assert placeholders <= set(reg["environment"])


def test_ports_match_settings_defaults() -> None:
    pg = _default(SERVICES["postgres"]["ports"][0])
    assert pg == f"127.0.0.1:{defaults().pg_port}:5432"
    kafka = _default(SERVICES["kafka"]["ports"][0])
    assert kafka == f"127.0.0.1:{defaults().kafka_port}:{defaults().kafka_port}"
    assert _default(SERVICES["connect"]["ports"][0]) == f"127.0.0.1:{defaults().connect_port}:8083"


def test_postgres_logical_and_kafka_limits_and_converters_match_native() -> None:
    assert "wal_level=logical" in SERVICES["postgres"]["command"]
    kenv = SERVICES["kafka"]["environment"]
    assert int(_default(kenv["KAFKA_MESSAGE_MAX_BYTES"])) == defaults().max_message_bytes
    assert int(_default(kenv["KAFKA_REPLICA_FETCH_MAX_BYTES"])) == defaults().max_message_bytes
    assert kenv["KAFKA_PROCESS_ROLES"] == "broker,controller"
    cenv = SERVICES["connect"]["environment"]
    assert cenv["CONNECT_KEY_CONVERTER_REPLACE_NULL_WITH_DEFAULT"] == "false"
    assert cenv["CONNECT_VALUE_CONVERTER_REPLACE_NULL_WITH_DEFAULT"] == "false"
    assert cenv["CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE"] == "true"
    assert int(_default(cenv["CONNECT_PRODUCER_MAX_REQUEST_SIZE"])) == defaults().max_message_bytes


def test_register_defaults_equal_native_values() -> None:
    env = SERVICES["register"]["environment"]
    native = compose_env(defaults().model_copy(update={"tables": ()}))
    for key in (
        "CHANGELAKE_TOPIC_PREFIX",
        "CHANGELAKE_SLOT_NAME",
        "CHANGELAKE_PUBLICATION_NAME",
        "CHANGELAKE_HEARTBEAT_INTERVAL_MS",
        "CHANGELAKE_MIN_COMPACTION_LAG_MS",
        "CHANGELAKE_MAX_MESSAGE_BYTES",
        "CHANGELAKE_CDC_USER",
        "CHANGELAKE_PG_DATABASE",
    ):
        assert _default(env[key]) == native[key], key
    # JSON-escaped regex, as envsubst pastes it into the JSON text
    assert _default(env["CHANGELAKE_TABLE_INCLUDE_LIST"]) == native["CHANGELAKE_TABLE_INCLUDE_LIST"]
    assert load_template()["plugin.name"] == "pgoutput"


def test_docker_runtime_is_the_external_code_path() -> None:
    """CHANGELAKE_RUNTIME=docker: every component external at the compose addresses, the
    connector reaching PostgreSQL inside the compose network, compose's host ports unchanged."""
    from pipelines.stack.connector_config import render
    from pipelines.stack.docker import SERVICES as STARTED

    s = Settings(_env_file=None, runtime="docker")
    assert not any(s.managed(p) for p in ("postgres", "kafka", "connect"))
    assert s.bootstrap_servers == f"127.0.0.1:{s.kafka_port}"  # compose publishes it there
    assert s.connect_url == f"http://127.0.0.1:{s.connect_port}"
    cfg = render(s)
    assert (cfg["database.hostname"], cfg["database.port"]) == ("postgres", "5432")
    assert compose_env(s)["CHANGELAKE_PG_PORT"] == str(s.pg_port)  # host side
    assert set(STARTED) == set(SERVICES) - {"register", "run"}  # opt-in profiles
    assert SERVICES["register"]["profiles"] == ["register"]  # not started by `up`


def test_run_service_uses_the_compose_services_as_external_ones_and_keeps_metrics_local() -> None:
    run = SERVICES["run"]
    assert run["profiles"] == ["run"] and run["build"]["dockerfile"] == "deploy/Dockerfile"
    env = run["environment"]
    assert {env[f"CHANGELAKE_{c}_MODE"] for c in ("PG", "KAFKA", "CONNECT")} == {"external"}
    assert env["CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["CHANGELAKE_CONNECT_REST_URL"] == "http://connect:8083"
    port = _default(run["ports"][0])
    assert port == f"127.0.0.1:{defaults().run_metrics_port}:{env['CHANGELAKE_RUN_METRICS_PORT']}"
    assert 'CMD ["changelake", "run"]' in (REPO_ROOT / "deploy/Dockerfile").read_text()
    unit = (REPO_ROOT / "deploy/changelake-run.service").read_text()
    assert "ExecStart=/opt/changelake/.venv/bin/changelake run" in unit
    assert "KillSignal=SIGTERM" in unit
