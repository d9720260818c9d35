"""The stack's derived configuration: connector JSON, worker/broker properties, topic names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.contract import heartbeat_topic, message_topic, sanitize_topic, topic_for
from pipelines.naming import QualifiedName
from pipelines.stack import connect, kafka, postgres
from pipelines.stack.connector_config import (
    HEARTBEAT,
    SIGNAL,
    include_tables,
    publish_option,
    render,
    template_env,
)
from pipelines.stack.docker import compose_env
from pipelines.stack.layout import Layout

pytestmark = pytest.mark.unit


def settings(**kw) -> Settings:  # noqa: ANN003
    kw.setdefault("home", Path("/tmp/x-home"))
    return Settings(_env_file=None, **kw)


def test_render_fills_every_placeholder_from_settings() -> None:
    s = settings(tables=("shop.orders", 'odd."We.ird"'), pg_port=5555, slot_name="s1")
    cfg = render(s)
    assert not any("${" in v for v in cfg.values())
    assert cfg["database.port"] == "5555" and cfg["slot.name"] == "s1"
    assert cfg["table.include.list"] == (
        rf"shop\.orders,odd\.We\.ird,shop\.outbox,{HEARTBEAT.include_list_regex},"
        rf"{SIGNAL.include_list_regex}"
    )
    assert cfg["signal.data.collection"] == f"{SIGNAL.schema}.{SIGNAL.table}"
    for tbl in include_tables(s):  # each regex matches exactly its own table
        pattern = re.compile(tbl.include_list_regex)
        assert pattern.fullmatch(f"{tbl.schema}.{tbl.table}")
    assert not re.fullmatch(QualifiedName("shop", "orders").include_list_regex, "shopXorders")


def test_connector_settings_required_by_the_issue() -> None:
    cfg = render(settings())
    expect = {
        "plugin.name": "pgoutput",
        "publication.autocreate.mode": "disabled",
        "snapshot.mode": "initial",
        "tombstones.on.delete": "true",
        "provide.transaction.metadata": "true",
        "skipped.operations": "none",
        "include.unknown.datatypes": "true",
        "decimal.handling.mode": "precise",
        "topic.creation.default.cleanup.policy": "compact",
        "topic.creation.default.min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
        "producer.override.max.request.size": str(16 * 1024 * 1024),
    }
    assert {k: cfg[k] for k in expect} == expect
    assert cfg["heartbeat.action.query"] == postgres.heartbeat_query()


def test_values_with_quotes_cannot_break_the_json() -> None:
    cfg = render(settings(cdc_password='p"w\\x'))
    assert cfg["database.password"] == 'p"w\\x'
    json.dumps(cfg)


def test_compose_env_escapes_regex_for_envsubst_into_json() -> None:
    s = settings(tables=("shop.orders",))
    env = compose_env(s)
    text = '{"v": "${X}"}'.replace("${X}", env["CHANGELAKE_TABLE_INCLUDE_LIST"])
    assert json.loads(text)["v"] == (
        rf"shop\.orders,shop\.outbox,{HEARTBEAT.include_list_regex},{SIGNAL.include_list_regex}"
    )
    for key in ("CHANGELAKE_OUTBOX_TOPIC_REGEX", "CHANGELAKE_EVENT_TOPIC_REGEX"):
        text = '{"v": "${X}"}'.replace("${X}", env[key])
        assert json.loads(text)["v"] == template_env(s)[key]


@pytest.mark.parametrize(
    ("table", "topic"),
    [
        (QualifiedName("shop", "orders"), "changelake.shop.orders"),
        (QualifiedName("Shop", "Order Items"), "changelake.Shop.Order_Items"),
        (QualifiedName("s", 'we"ird.na-me'), "changelake.s.we_ird.na-me"),
        (QualifiedName("s", "näme"), "changelake.s.n_me"),
        (QualifiedName("s", "a\U0001f600b"), "changelake.s.a__b"),  # surrogate pair -> two chars
    ],
)
def test_topic_for_follows_debezium_sanitising(table: QualifiedName, topic: str) -> None:
    assert topic_for(settings(), table) == topic


def test_heartbeat_topic() -> None:
    assert heartbeat_topic(settings(topic_prefix="p")) == "__debezium-heartbeat.p"
    assert sanitize_topic("a b") == "a_b"


def test_kafka_properties_raise_limits_and_use_settings_ports() -> None:
    s = settings(kafka_port=1111, kafka_controller_port=2222, max_message_bytes=9_000_000)
    props = dict(
        line.split("=", 1)
        for line in kafka.server_properties(s, Layout.of(s)).splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["message.max.bytes"] == props["replica.fetch.max.bytes"] == "9000000"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "false"


def test_worker_properties() -> None:
    s = settings(connect_port=3333)
    props = dict(
        line.split("=", 1)
        for line in connect.worker_properties(s, Layout.of(s)).splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listeners"] == "http://127.0.0.1:3333"
    assert (
        props["key.converter.schemas.enable"] == props["value.converter.schemas.enable"] == "true"
    )
    assert props["key.converter.replace.null.with.default"] == "false"
    assert props["value.converter.replace.null.with.default"] == "false"
    assert props["topic.creation.enable"] == "true"
    assert props["plugin.path"] == "/tmp/x-home/jars/plugins"
    assert all(
        props[f"{t}.storage.replication.factor"] == "1" for t in ("config", "offset", "status")
    )


def test_keyless_tables_get_delete_policy_topics_under_compaction() -> None:
    s = settings(tables=("shop.orders", "shop.log"))
    cfg = render(s, keyless=[QualifiedName("shop", "log")])
    assert cfg["topic.creation.default.cleanup.policy"] == "compact"
    assert cfg["topic.creation.groups"] == "events,keyless,notify"  # the template's group kept
    assert re.fullmatch(
        cfg["topic.creation.keyless.include"], topic_for(s, QualifiedName("shop", "log"))
    )
    assert not re.fullmatch(
        cfg["topic.creation.keyless.include"], topic_for(s, QualifiedName("shop", "orders"))
    )
    assert cfg["topic.creation.keyless.cleanup.policy"] == "delete"
    assert cfg["topic.creation.keyless.retention.ms"] == "-1"


def test_the_notification_topic_is_never_compacted() -> None:
    # every logical decoding message has the same key (its prefix): compaction keeps one
    s = settings(tables=("shop.orders",))
    cfg = render(s)
    assert cfg["topic.creation.groups"] == "events,notify"  # the outbox events group kept
    assert re.fullmatch(cfg["topic.creation.notify.include"], message_topic(s))
    assert not re.fullmatch(
        cfg["topic.creation.notify.include"], topic_for(s, QualifiedName("shop", "orders"))
    )
    assert cfg["topic.creation.notify.cleanup.policy"] == "delete"
    assert cfg["topic.creation.notify.retention.ms"] == "-1"


def test_delete_policy_streams_truncates_and_keeps_everything() -> None:
    cfg = render(settings(topic_cleanup_policy="delete"), keyless=[QualifiedName("shop", "log")])
    assert cfg["topic.creation.default.cleanup.policy"] == "delete"
    assert cfg["topic.creation.default.retention.ms"] == "-1"
    assert cfg["topic.creation.groups"] == "events"  # no keyless group needed
    assert publish_option(settings(topic_cleanup_policy="delete")).endswith("truncate")
    assert "truncate" not in publish_option(settings())


def test_storage_format_passes_a_dash_leading_cluster_id_as_one_token(tmp_path: Path) -> None:
    """Base64url cluster ids start with '-' one time in 64; as a separate argv token the
    storage tool took it for a flag and `up` failed at random."""
    from unittest import mock

    layout = Layout.of(settings(home=tmp_path))
    with (
        mock.patch.object(kafka.base64, "urlsafe_b64encode", lambda _b: b"-dashFirst=="),
        mock.patch.object(kafka, "run") as run,
    ):
        assert kafka.format_storage(layout)
    argv = run.call_args.args[0]
    assert "--cluster-id=-dashFirst" in argv and "-dashFirst" not in argv


def test_snapshot_signal_names_each_table_by_its_anchored_regex() -> None:
    from pipelines.stack.signal import snapshot_signal

    t = QualifiedName("odd", "We.ird")
    assert snapshot_signal([t]) == {"data-collections": [r"odd\.We\.ird"], "type": "incremental"}
    with_where = snapshot_signal([t], "id <= 10")
    assert with_where["additional-conditions"] == [
        {"data-collection": r"odd\.We\.ird", "filter": "id <= 10"}
    ]


def test_a_settings_copy_derives_its_paths_and_tables_from_the_updated_fields(tmp_path) -> None:
    # pydantic's model_copy copies what a cached_property already computed from the old
    # fields: the copy would keep the original's lake, warehouse, catalog and tables
    s = Settings(_env_file=None, home=tmp_path / "a")
    before = (s.lake_root, s.warehouse_path, s.iceberg_catalog_url, s.captured)
    c = s.model_copy(
        update={"lake": tmp_path / "b", "warehouse": tmp_path / "w.duckdb", "tables": ("x.y",)}
    )
    assert c.lake_root == (tmp_path / "b").resolve()
    assert c.warehouse_path == (tmp_path / "w.duckdb").resolve()
    assert str(tmp_path / "b") in c.iceberg_catalog_url
    assert [str(t) for t in c.captured] == ["x.y"]
    assert (s.lake_root, s.warehouse_path, s.iceberg_catalog_url, s.captured) == before
