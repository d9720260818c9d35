"""One Kafka node in KRaft mode (combined broker + controller) on loopback.

Storage is formatted once with a random cluster id (``kafka.tools.StorageTool``); a static
single-voter quorum keeps the controller port changeable between runs. Message size limits are
raised to ``Settings.max_message_bytes`` so a row of up to 8 MB passes end to end. Automatic
topic creation is off: a consumer asking for a topic that does not exist yet must not create it
with default (non-compacted, small) settings before Connect creates it with ours.
"""

from __future__ import annotations

import base64
import uuid

from pipelines.config import Settings
from pipelines.stack import jvm
from pipelines.stack.layout import Layout
from pipelines.stack.procs import (
    StackFatal,
    live_pid,
    log_tail,
    recorded_alive,
    run,
    spawn,
    terminate,
    wait_until,
)

MAIN = "kafka.Kafka"
NODE_ID = 1


def properties_path(layout: Layout) -> str:
    return str(layout.conf / "kafka.properties")


def marker(layout: Layout) -> str:
    return properties_path(layout)


def pid(layout: Layout) -> int | None:
    return live_pid(layout.pid_file("kafka"), marker(layout))


def server_properties(settings: Settings, layout: Layout) -> str:
    host, mmb = settings.bind_host, int(settings.max_message_bytes)
    return "\n".join(
        [
            "# written by `changelake up` on every start; edit Settings (CHANGELAKE_*) instead",
            "process.roles=broker,controller",
            f"node.id={NODE_ID}",
            f"controller.quorum.voters={NODE_ID}@{host}:{int(settings.kafka_controller_port)}",
            f"listeners=PLAINTEXT://{host}:{int(settings.kafka_port)},CONTROLLER://{host}:{int(settings.kafka_controller_port)}",
            f"advertised.listeners=PLAINTEXT://{host}:{int(settings.kafka_port)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={layout.kafka_data}",
            "num.partitions=1",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=5",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            f"message.max.bytes={mmb}",
            f"replica.fetch.max.bytes={mmb}",
            f"socket.request.max.bytes={max(mmb * 2, 104857600)}",
            "log.retention.hours=-1",
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
            "log.cleaner.threads=1",
            "log.cleaner.dedupe.buffer.size=16777216",
            "",
        ]
    )


def write_config(settings: Settings, layout: Layout) -> None:
    layout.conf.mkdir(parents=True, exist_ok=True)
    (layout.conf / "kafka.properties").write_text(server_properties(settings, layout))


def format_storage(layout: Layout) -> bool:
    """Format the log dir once (KRaft needs it before the first start). True if formatted now."""
    if (layout.kafka_data / "meta.properties").exists():
        return False
    layout.kafka_data.mkdir(parents=True, exist_ok=True)
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    run(
        jvm.java_argv(
            layout,
            "storage",
            "kafka.tools.StorageTool",
            "format",
            # one token: a base64url id may start with "-", which argparse would take for a flag
            f"--cluster-id={cluster_id}",
            "-c",
            properties_path(layout),
            "--ignore-formatted",
            heap="256m",
        ),
        what="Kafka storage format",
        log=layout.log_file("kafka"),
    )
    return True


def start(layout: Layout) -> None:
    if pid(layout):
        return
    spawn(
        jvm.java_argv(layout, "kafka", MAIN, properties_path(layout)),
        log=layout.logs / "kafka.stdout",
        pid_file=layout.pid_file("kafka"),
    )


def stop(layout: Layout) -> None:
    p = pid(layout)
    if p:
        terminate(p, marker(layout), timeout=60)
    layout.pid_file("kafka").unlink(missing_ok=True)


def healthy(settings: Settings) -> bool:
    """The broker answers a metadata request (lists topics)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=5000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def wait_healthy(settings: Settings, layout: Layout, timeout: float) -> None:
    def check() -> bool:
        if not recorded_alive(layout.pid_file("kafka")):
            raise StackFatal(
                f"kafka exited during start; see {layout.log_file('kafka')}\n"
                + log_tail(layout.log_file("kafka"), layout.logs / "kafka.stdout")
            )
        return healthy(settings)

    wait_until(check, timeout=timeout, what="kafka", log=layout.log_file("kafka"), interval=0.5)


def is_internal(topic: str) -> bool:
    """Kafka's and Connect's bookkeeping topics (not the Debezium heartbeat topic)."""
    return topic.startswith("_changelake-connect-") or (
        topic.startswith("__") and not topic.startswith("__debezium-heartbeat")
    )


def end_offsets(
    settings: Settings, *, include_internal: bool = False
) -> dict[tuple[str, int], int]:
    """End offset of every partition of every topic (internal ``_``-topics left out by default)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        request_timeout_ms=15000,
    )
    try:
        tps = [
            TopicPartition(t, p)
            for t in sorted(consumer.topics())
            if include_internal or not is_internal(t)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends = consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): int(off) for tp, off in ends.items()}
    finally:
        consumer.close()
