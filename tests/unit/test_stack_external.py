"""External components: settings, the Kafka client options every client gets, the worker's
security properties, and the preflight's finding format."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.config import Settings
from pipelines.stack import connect
from pipelines.stack.findings import Finding
from pipelines.stack.layout import Layout
from pipelines.stack.postgres import HEARTBEAT_SCHEMA
from pipelines.stack.status import slot_warnings

pytestmark = pytest.mark.unit


def settings(**kw) -> Settings:  # noqa: ANN003
    kw.setdefault("home", Path("/tmp/x-home"))
    return Settings(_env_file=None, **kw)


def test_managed_addresses_are_derived_from_ports() -> None:
    s = settings(kafka_port=1234, connect_port=4321)
    assert s.bootstrap_servers == "127.0.0.1:1234"
    assert s.connect_url == "http://127.0.0.1:4321"
    assert all(s.managed(c) for c in ("postgres", "kafka", "connect"))
    assert s.kafka_client_options() == {
        "bootstrap_servers": ["127.0.0.1:1234"],
        "security_protocol": "PLAINTEXT",
    }


def test_external_addresses_are_used_verbatim() -> None:
    s = settings(
        kafka_mode="external",
        kafka_bootstrap_servers="k1:9092,k2:9092",
        connect_mode="external",
        connect_rest_url="https://connect.example:8083/",
    )
    assert s.bootstrap_servers == "k1:9092,k2:9092"
    assert s.kafka_client_options()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert s.connect_url == "https://connect.example:8083"
    assert not s.managed("kafka") and not s.managed("connect") and s.managed("postgres")


@pytest.mark.parametrize(
    ("kw", "needs"),
    [
        ({"kafka_mode": "external"}, "CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS"),
        ({"connect_mode": "external"}, "CHANGELAKE_CONNECT_REST_URL"),
    ],
)
def test_external_without_an_address_is_refused(kw: dict, needs: str) -> None:
    with pytest.raises(ValidationError, match=needs):
        settings(**kw)


def test_sasl_ssl_reaches_python_and_java_clients() -> None:
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password='p"w\\x',
        kafka_ssl_cafile=Path("/etc/ca.pem"),
    )
    opts = s.kafka_client_options()
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (opts["sasl_plain_username"], opts["sasl_plain_password"]) == ("u", 'p"w\\x')
    assert opts["ssl_cafile"] == "/etc/ca.pem"
    java = s.kafka_java_properties()
    assert java["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="u" password="p\\"w\\\\x";'
    )
    assert java["ssl.truststore.type"] == "PEM"
    props = connect.worker_properties(s, Layout.of(s)).splitlines()
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert f"{prefix}security.protocol=SASL_SSL" in props
        # .properties escaping: each backslash doubled once more
        assert any(
            line.startswith(f"{prefix}sasl.jaas.config=") and 'password="p\\\\"w\\\\\\\\x";' in line
            for line in props
        )


def test_plaintext_worker_gets_no_login_settings() -> None:
    props = connect.worker_properties(settings(), Layout.of(settings()))
    assert "security.protocol=PLAINTEXT" in props and "sasl." not in props


def test_internal_schema_is_not_an_app_roles_own() -> None:
    assert HEARTBEAT_SCHEMA == "_changelake"
    assert settings().pg_user != HEARTBEAT_SCHEMA  # search_path "$user" must not find it


def test_slot_warning_only_past_the_limit() -> None:
    s = settings(max_slot_lag_bytes=100)
    assert slot_warnings(s, {s.slot_name: 100, "other": 10**9}) == ()
    (warning,) = slot_warnings(s, {s.slot_name: 101})
    assert "101 bytes" in warning and "CHANGELAKE_MAX_SLOT_LAG_BYTES=100" in warning
    assert slot_warnings(s, {}) == ()


def test_finding_line_shows_the_fix_unless_ok() -> None:
    bad = Finding("postgres.wal_level", "blocking", "wal_level = replica", "ALTER SYSTEM ...")
    assert bad.line() == "blocking postgres.wal_level: wal_level = replica -- fix: ALTER SYSTEM ..."
    assert "fix" not in Finding("x", "ok", "fine", "unused").line()
