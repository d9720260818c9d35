"""The Kafka Connect distributed worker and its REST API, and the Debezium connector on it.

Config, offsets and status live in Kafka topics (replication factor 1); JsonConverter with
schemas for key and value and ``replace.null.with.default=false`` so a NULL column stays NULL.
Debezium is loaded from ``plugin.path``; ``connector.client.config.override.policy=All`` lets
the connector raise its producer's ``max.request.size``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pipelines.config import Settings
from pipelines.stack import jvm
from pipelines.stack.layout import Layout
from pipelines.stack.procs import (
    StackError,
    StackFatal,
    live_pid,
    log_tail,
    recorded_alive,
    spawn,
    terminate,
    wait_until,
)

MAIN = "org.apache.kafka.connect.cli.ConnectDistributed"
CONFIG_TOPIC = "_changelake-connect-configs"
OFFSET_TOPIC = "_changelake-connect-offsets"
STATUS_TOPIC = "_changelake-connect-status"


def properties_path(layout: Layout) -> str:
    return str(layout.conf / "connect.properties")


def marker(layout: Layout) -> str:
    return properties_path(layout)


def pid(layout: Layout) -> int | None:
    return live_pid(layout.pid_file("connect"), marker(layout))


def _client_security(settings: Settings) -> list[str]:
    """The Kafka login settings for the worker itself and for its producers, consumers and
    admin clients (Connect does not pass the worker's to them)."""
    props = settings.kafka_java_properties()
    return [
        f"{pre}{k}={v.replace(chr(92), chr(92) * 2)}"  # .properties: a backslash escapes
        for pre in ("", "producer.", "consumer.", "admin.")
        for k, v in props.items()
    ]


def worker_properties(settings: Settings, layout: Layout) -> str:
    host, mmb = settings.bind_host, int(settings.max_message_bytes)
    return "\n".join(
        [
            "# written by `changelake up` on every start; edit Settings (CHANGELAKE_*) instead",
            f"bootstrap.servers={settings.bootstrap_servers}",
            *_client_security(settings),
            f"group.id={settings.topic_prefix}-connect",
            "key.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable=true",
            "value.converter.schemas.enable=true",
            "key.converter.replace.null.with.default=false",
            "value.converter.replace.null.with.default=false",
            f"config.storage.topic={CONFIG_TOPIC}",
            f"offset.storage.topic={OFFSET_TOPIC}",
            f"status.storage.topic={STATUS_TOPIC}",
            "config.storage.replication.factor=1",
            "offset.storage.replication.factor=1",
            "status.storage.replication.factor=1",
            "offset.storage.partitions=1",
            "status.storage.partitions=1",
            "offset.flush.interval.ms=1000",
            f"listeners=http://{host}:{int(settings.connect_port)}",
            f"rest.advertised.host.name={host}",
            f"rest.advertised.port={int(settings.connect_port)}",
            f"plugin.path={layout.plugin_path}",
            "plugin.discovery=service_load",
            "topic.creation.enable=true",
            "connector.client.config.override.policy=All",
            f"producer.max.request.size={mmb}",
            f"producer.buffer.memory={max(mmb * 2, 33554432)}",
            f"consumer.fetch.max.bytes={mmb}",
            f"consumer.max.partition.fetch.bytes={mmb}",
            "",
        ]
    )


def write_config(settings: Settings, layout: Layout) -> None:
    layout.conf.mkdir(parents=True, exist_ok=True)
    path = layout.conf / "connect.properties"
    path.touch(mode=0o600)  # may hold the Kafka SASL password
    path.write_text(worker_properties(settings, layout))


def start(layout: Layout) -> None:
    if pid(layout):
        return
    spawn(
        jvm.java_argv(layout, "connect", MAIN, properties_path(layout)),
        log=layout.logs / "connect.stdout",
        pid_file=layout.pid_file("connect"),
    )


def stop(layout: Layout) -> None:
    p = pid(layout)
    if p:
        terminate(p, marker(layout), timeout=60)
    layout.pid_file("connect").unlink(missing_ok=True)


def rest(
    settings: Settings, method: str, path: str, body: Any = None, *, timeout: float = 30
) -> Any:
    """One call to the Connect REST API; JSON in and out; StackError with the worker's message."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        settings.connect_url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own loopback URL
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise StackError(f"Connect REST {method} {path} -> {exc.code}: {detail[:500]}") from exc
    return json.loads(raw) if raw else None


def healthy(settings: Settings) -> bool:
    """The worker's REST API answers and it has joined its group (lists connectors)."""
    rest(settings, "GET", "/connectors", timeout=5)
    return True


def wait_healthy(settings: Settings, layout: Layout, timeout: float) -> None:
    def check() -> bool:
        if not recorded_alive(layout.pid_file("connect")):
            raise StackFatal(
                f"connect exited during start; see {layout.log_file('connect')}\n"
                + log_tail(layout.log_file("connect"), layout.logs / "connect.stdout")
            )
        return healthy(settings)

    wait_until(check, timeout=timeout, what="connect", log=layout.log_file("connect"), interval=0.5)


def connector_path(settings: Settings, suffix: str = "") -> str:
    return "/connectors/" + urllib.parse.quote(settings.connector_name, safe="") + suffix


def connector_status(settings: Settings) -> dict[str, Any] | None:
    """``GET /connectors/<name>/status`` or None if the connector is not registered."""
    try:
        return rest(settings, "GET", connector_path(settings, "/status"), timeout=10)
    except StackError as exc:
        if "-> 404" in str(exc):
            return None
        raise


def connector_config(settings: Settings) -> dict[str, str] | None:
    try:
        return rest(settings, "GET", connector_path(settings, "/config"), timeout=10)
    except StackError as exc:
        if "-> 404" in str(exc):
            return None
        raise


def put_config(settings: Settings, config: dict[str, str]) -> bool:
    """Create or update the connector (idempotent). True if anything changed."""
    current = connector_config(settings)
    if current is not None and {k: v for k, v in current.items() if k != "name"} == config:
        return False
    rest(settings, "PUT", connector_path(settings, "/config"), config)
    return True


def restart(settings: Settings) -> None:
    rest(settings, "POST", connector_path(settings, "/restart?includeTasks=true&onlyFailed=false"))


def running(status: dict[str, Any] | None) -> bool:
    if not status or status.get("connector", {}).get("state") != "RUNNING":
        return False
    tasks = status.get("tasks") or []
    return bool(tasks) and all(t.get("state") == "RUNNING" for t in tasks)


def wait_running(settings: Settings, layout: Layout, timeout: float = 60) -> None:
    """Until connector and every task are RUNNING; a FAILED task raises with its trace at once."""

    def check() -> bool:
        st = connector_status(settings)
        for t in (st or {}).get("tasks") or []:
            if t.get("state") == "FAILED":
                trace = (t.get("trace") or "").strip().splitlines()[:3]
                raise StackFatal(
                    f"connector task {t.get('id')} FAILED: {' | '.join(trace)}; "
                    f"see {layout.log_file('connect')}"
                )
        return running(st)

    wait_until(
        check,
        timeout=timeout,
        what=f"connector {settings.connector_name}",
        log=layout.log_file("connect"),
        interval=0.5,
    )
