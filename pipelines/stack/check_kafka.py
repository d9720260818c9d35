"""The Kafka and Kafka Connect parts of ``changelake check``.

Kafka: reachable with the configured client settings, and the brokers' ``message.max.bytes``
against ``CHANGELAKE_MAX_MESSAGE_BYTES``. Connect: its REST API answers, it writes to the same
Kafka cluster changelake reads, its workers have the Debezium PostgreSQL plugin (and which
version), and the connector config changelake would register validates there.
"""

from __future__ import annotations

import urllib.parse

from pipelines.config import Settings
from pipelines.stack import connect as connect_api
from pipelines.stack.connector_config import render
from pipelines.stack.findings import Finding

DEBEZIUM_CLASS = "io.debezium.connector.postgresql.PostgresConnector"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _broker_config(admin, node_id: int, key: str) -> str | None:  # noqa: ANN001 - kafka-python
    from kafka.admin import ConfigResource, ConfigResourceType

    res = ConfigResource(ConfigResourceType.BROKER, str(node_id), configs={key: None})
    got = admin.describe_configs([res], config_filter="all")
    for by_name in got.values():
        for entries in by_name.values():
            if key in entries:
                entry = entries[key]
                return str(entry.get("value") if isinstance(entry, dict) else entry)
    return None


def kafka(settings: Settings) -> tuple[list[Finding], str | None]:
    """Findings and the cluster id (None when Kafka cannot be reached)."""
    from kafka import KafkaAdminClient

    where = settings.bootstrap_servers
    try:
        admin = KafkaAdminClient(
            **settings.kafka_client_options(),
            request_timeout_ms=10_000,
            client_id="changelake-check",
        )
    except Exception as exc:  # noqa: BLE001 - any client failure is the finding
        return [
            Finding(
                "kafka.reachable",
                "blocking",
                f"cannot reach Kafka at {where}: {_first_line(exc)}",
                "check CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS and CHANGELAKE_KAFKA_SECURITY_PROTOCOL/"
                "SASL_*/SSL_CAFILE"
                if settings.kafka_mode == "external"
                else "`changelake up` starts the managed broker",
            )
        ], None
    try:
        cluster = admin.describe_cluster()
        brokers = sorted(b["broker_id"] for b in cluster["brokers"])
        findings = [
            Finding(
                "kafka.reachable",
                "ok",
                f"Kafka at {where}: cluster {cluster['cluster_id']}, {len(brokers)} broker(s)",
            )
        ]
        want = int(settings.max_message_bytes)
        value = _broker_config(admin, brokers[0], "message.max.bytes")
        if value is not None:
            limit = int(value)
            findings.append(
                Finding(
                    "kafka.message_max_bytes",
                    "ok" if limit >= want else "warning",
                    f"broker message.max.bytes = {limit}, CHANGELAKE_MAX_MESSAGE_BYTES = {want}"
                    + (
                        ""
                        if limit >= want
                        else " (changelake's topics raise their own max.message.bytes; "
                        "topics created elsewhere reject larger rows)"
                    ),
                    f"kafka-configs.sh --bootstrap-server {where} --alter --entity-type brokers "
                    f"--entity-default --add-config message.max.bytes={want}; or lower "
                    f"CHANGELAKE_MAX_MESSAGE_BYTES to {limit}",
                )
            )
        return findings, str(cluster["cluster_id"])
    except Exception as exc:  # noqa: BLE001
        return [
            Finding(
                "kafka.reachable",
                "blocking",
                f"Kafka at {where} does not answer metadata requests: {_first_line(exc)}",
                "check the security settings and the brokers' advertised.listeners",
            )
        ], None
    finally:
        admin.close()


def connect(settings: Settings, *, kafka_cluster_id: str | None, validate: bool) -> list[Finding]:
    url = settings.connect_url
    try:
        root = connect_api.rest(settings, "GET", "/", timeout=10)
        plugins = connect_api.rest(settings, "GET", "/connector-plugins", timeout=10)
    except Exception as exc:  # noqa: BLE001 - unreachable or not Connect: the finding
        return [
            Finding(
                "connect.reachable",
                "blocking",
                f"cannot reach Kafka Connect at {url}: {_first_line(exc)}",
                "check CHANGELAKE_CONNECT_REST_URL"
                if settings.connect_mode == "external"
                else "`changelake up` starts the managed worker",
            )
        ]
    findings = [Finding("connect.reachable", "ok", f"Kafka Connect {root.get('version')} at {url}")]
    theirs = root.get("kafka_cluster_id")
    if kafka_cluster_id and theirs and theirs != kafka_cluster_id:
        findings.append(
            Finding(
                "connect.kafka",
                "blocking",
                f"Connect at {url} writes to Kafka cluster {theirs}, changelake reads "
                f"{kafka_cluster_id} at {settings.bootstrap_servers}",
                "point CHANGELAKE_KAFKA_BOOTSTRAP_SERVERS at the cluster the workers use",
            )
        )
    debezium = [p for p in plugins if p.get("class") == DEBEZIUM_CLASS]
    findings.append(
        Finding(
            "connect.debezium",
            "ok" if debezium else "blocking",
            f"Debezium PostgreSQL connector {debezium[0].get('version')}"
            if debezium
            else f"the workers at {url} have no {DEBEZIUM_CLASS} plugin",
            "install debezium-connector-postgres (3.x) into every worker's plugin.path "
            "and restart the workers",
        )
    )
    if debezium and validate:
        findings += _validate(settings)
    return findings


def _validate(settings: Settings) -> list[Finding]:
    """Connect's own validation of the config ``up`` would register (Debezium logs in to
    PostgreSQL from the worker, so this also proves the worker reaches the database)."""
    config = render(settings) | {"name": settings.connector_name}
    path = f"/connector-plugins/{urllib.parse.quote(DEBEZIUM_CLASS)}/config/validate"
    try:
        answer = connect_api.rest(settings, "PUT", path, config, timeout=60)
    except Exception as exc:  # noqa: BLE001
        return [
            Finding("connect.validate", "warning", f"validation call failed: {_first_line(exc)}")
        ]
    values = [c.get("value") or {} for c in answer.get("configs") or []]
    errors = [f"{v.get('name')}: {err}" for v in values for err in v.get("errors") or []]
    if not errors:
        return [Finding("connect.validate", "ok", "the connector config validates on the workers")]
    return [
        Finding(
            "connect.validate",
            "blocking",
            f"the workers reject the connector config: {err}",
            "see the message; e.g. database.hostname must be reachable from the workers",
        )
        for err in errors
    ]
