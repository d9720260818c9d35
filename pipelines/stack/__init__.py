"""The local CDC stack (PostgreSQL + Kafka KRaft + Kafka Connect with Debezium), run natively.

These functions are what the CLI (``changelake up/down/status/logs``), the pytest ``stack``
fixture and the fault suite call.
"""

from __future__ import annotations

from pipelines.contract import heartbeat_topic, topic_for, transaction_topic
from pipelines.stack.connector_config import render
from pipelines.stack.layout import Layout
from pipelines.stack.lifecycle import (
    down,
    register_connector,
    restart_component,
    up,
    wait_connector_running,
)
from pipelines.stack.procs import StackError
from pipelines.stack.status import ComponentStatus, StackStatus, end_offsets, status

__all__ = [
    "ComponentStatus",
    "Layout",
    "StackError",
    "StackStatus",
    "down",
    "end_offsets",
    "heartbeat_topic",
    "register_connector",
    "render",
    "restart_component",
    "status",
    "topic_for",
    "transaction_topic",
    "up",
    "wait_connector_running",
]
