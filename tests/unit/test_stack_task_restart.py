"""A task start is told by the notification it sends (``Initial Snapshot``), in the JsonConverter
envelope the real connector uses; snapshot-progress or garbage values are not one."""

from __future__ import annotations

import orjson
import pytest

from pipelines.stack.task_restart import _is_task_start

pytestmark = pytest.mark.unit


def value(agg: str, kind: str) -> bytes:
    payload = {
        "id": "x",
        "aggregate_type": agg,
        "type": kind,
        "additional_data": {},
        "timestamp": 1,
    }
    return orjson.dumps({"schema": {"type": "struct"}, "payload": payload})


def test_initial_snapshot_notification_is_a_task_start() -> None:
    assert _is_task_start(value("Initial Snapshot", "SKIPPED"))
    assert not _is_task_start(value("Incremental Snapshot", "STARTED"))
    assert not _is_task_start(b"not json") and not _is_task_start(None)
    assert not _is_task_start(b"[1, 2]")
