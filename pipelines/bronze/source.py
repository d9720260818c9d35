"""Which Kafka cluster a lake was landed from.

The lake records landed offsets per topic-partition; those offsets only mean something for the
Kafka cluster they came from. A stack rebuilt from scratch (``changelake down --purge``) starts its
topics at offset 0 again, so a lander that trusted the old lake would skip every new event up to
the old offsets. The lake therefore remembers its cluster id and refuses a different one.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from kafka.admin import KafkaAdminClient

from pipelines.bronze.layout import LANDED
from pipelines.durable import write_bytes

SOURCE_FILE = "_source.json"


class LakeSourceMismatch(RuntimeError):
    """The lake was landed from another Kafka cluster than the one configured now."""


def kafka_cluster_id(bootstrap_servers: str | list[str], **client_options: object) -> str:
    """The cluster id the broker reports (set when its KRaft storage was formatted);
    ``client_options``: further kafka-python arguments (security settings)."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="changelake-lander", **client_options
    )
    try:
        return str(admin.describe_cluster()["cluster_id"])
    finally:
        admin.close()


def check_source(lake: Path, cluster_id: str) -> None:
    """Record ``cluster_id`` for a lake that has none; raise if the lake names another one."""
    path = lake / LANDED / SOURCE_FILE
    if path.exists():
        recorded = orjson.loads(path.read_bytes()).get("kafka_cluster_id")
        if recorded != cluster_id:
            raise LakeSourceMismatch(
                f"the lake at {lake} was landed from Kafka cluster {recorded}, but the configured "
                f"cluster is {cluster_id}: its offsets would skip or repeat events. Point "
                "CHANGELAKE_LAKE at a new folder (or move the old lake away) to land this cluster."
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, orjson.dumps({"kafka_cluster_id": cluster_id}))
