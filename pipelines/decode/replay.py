"""Read and write Kafka messages as JSON lines, so recorded traffic can be replayed.

One line per message: ``{"topic", "partition", "offset", "timestamp", "key", "value"}`` with key
and value as UTF-8 text (JsonConverter output is always text) or ``null``; a payload that is not
UTF-8 is written as ``{"b64": "..."}`` so nothing is lost. ``tests/fixtures/record_debezium.py``
writes the recordings the decoder's unit tests replay.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import orjson

from pipelines.decode import RawMessage


def _encode(data: bytes | None) -> str | dict | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode()}


def _decode(field: str | dict | None) -> bytes | None:
    if field is None:
        return None
    if isinstance(field, dict):
        return base64.b64decode(field["b64"])
    return field.encode()


def to_line(msg: RawMessage) -> bytes:
    """One JSON line for ``msg`` (newline included)."""
    return orjson.dumps({
        "topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
        "timestamp": msg.timestamp_ms, "key": _encode(msg.key), "value": _encode(msg.value),
    }) + b"\n"  # fmt: skip


def write_jsonl(path: Path, messages: Iterable[RawMessage]) -> int:
    """Write ``messages`` to ``path``; returns how many."""
    n = 0
    with path.open("wb") as fh:
        for msg in messages:
            fh.write(to_line(msg))
            n += 1
    return n


def read_jsonl(path: Path) -> list[RawMessage]:
    """The messages of a JSON-lines recording, in file order."""
    out = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        d = orjson.loads(line)
        out.append(RawMessage(d["topic"], int(d["partition"]), int(d["offset"]), d["timestamp"],
                              _decode(d["key"]), _decode(d["value"])))  # fmt: skip
    return out
