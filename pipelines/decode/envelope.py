"""Split a JsonConverter message into its Connect schema and payload; plan a schema once.

A JsonConverter record is ``{"schema": {...}, "payload": {...}}`` with the schema written first.
The schema is usually bigger than the payload and identical across a table's messages, so we
cut the raw bytes at ``,"payload":`` and parse only the payload per message; the schema bytes
are the cache key for an ``EnvelopePlan`` (Arrow types + converters) built once per distinct
schema. The cut is safe: inside a JSON string every quote is escaped, so the byte sequence
``,"payload":`` can only be the schema's end (Connect schemas have no ``payload`` key); anything
unexpected falls back to a full parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import orjson
import pyarrow as pa

from pipelines.decode.types import Column, SchemaMismatch, column_for

_HEAD = b'{"schema":'
_CUT = b',"payload":'


class BadMessage(ValueError):
    """A message that cannot be decoded; its text becomes the quarantine reason."""


def split(raw: bytes) -> tuple[bytes, object]:
    """Return (schema bytes, parsed payload) of a JsonConverter message with schemas enabled."""
    if raw.startswith(_HEAD):
        cut = raw.find(_CUT)
        if cut > 0 and raw.endswith(b"}"):
            try:
                return raw[len(_HEAD) : cut], orjson.loads(raw[cut + len(_CUT) : -1])
            except orjson.JSONDecodeError:
                pass  # fall through to the full parse for an exact error
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or "schema" not in doc or "payload" not in doc:
        raise BadMessage("not a JsonConverter envelope: expected an object with schema and payload")
    return orjson.dumps(doc["schema"], option=orjson.OPT_SORT_KEYS), doc["payload"]


class Splitter:
    """``split`` that remembers the last schema per topic, so a message whose schema repeats
    (nearly all of them) costs one memcmp instead of a search plus a copy; the schema bytes
    object is shared, so its hash is computed once for the grouping dict and the plan cache."""

    def __init__(self) -> None:
        self._last: dict[str, list[tuple[bytes, bytes]]] = {}

    def __call__(self, topic: str, raw: bytes) -> tuple[bytes, object]:
        known = self._last.setdefault(topic, [])
        for prefix, schema_bytes in known:  # a topic has one schema, a few around an ALTER
            if raw.startswith(prefix) and raw.endswith(b"}"):
                try:
                    return schema_bytes, orjson.loads(memoryview(raw)[len(prefix) : -1])
                except orjson.JSONDecodeError:
                    break  # fall through for the exact error
        schema_bytes, payload = split(raw)
        prefix = _HEAD + schema_bytes + _CUT
        if raw.startswith(prefix):
            known.insert(0, (prefix, schema_bytes))
            del known[4:]
        return schema_bytes, payload

    def prefix(self, topic: str, schema_bytes: bytes) -> bytes | None:
        """The remembered message prefix (head + schema + cut) of ``schema_bytes`` on ``topic``."""
        for prefix, known in self._last.get(topic, ()):
            if known is schema_bytes or known == schema_bytes:
                return prefix
        return None


@dataclass(frozen=True)
class EnvelopePlan:
    """Everything derived from one Debezium value schema."""

    columns: tuple[Column, ...]
    row_type: pa.StructType
    warnings: tuple[str, ...]


@lru_cache(maxsize=1024)
def plan_for(schema_bytes: bytes) -> EnvelopePlan:
    """Parse a Debezium envelope schema once and derive the source columns' Arrow plan."""
    try:
        schema = orjson.loads(schema_bytes)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"invalid schema JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "struct":
        raise BadMessage("envelope schema is not a struct")
    fields = {f.get("field"): f for f in schema.get("fields", []) if isinstance(f, dict)}
    row = fields.get("after") or fields.get("before")
    if "op" not in fields or "source" not in fields:
        raise BadMessage("not a Debezium change envelope (no op/source in schema)")
    if row is None or row.get("type") != "struct":
        return EnvelopePlan((), pa.struct([]), ())
    try:
        cols = tuple(column_for(f, f["field"]) for f in row.get("fields", []))
    except (SchemaMismatch, KeyError, TypeError) as exc:
        raise BadMessage(f"unusable row schema: {exc}") from None
    warnings = tuple(w for c in cols for w in c.warnings)
    return EnvelopePlan(cols, pa.struct([pa.field(c.name, c.type) for c in cols]), warnings)


@lru_cache(maxsize=1024)
def key_columns(schema_bytes: bytes) -> tuple[str, ...]:
    """Primary-key column names from a Debezium key schema (empty when keyless)."""
    schema = orjson.loads(schema_bytes)
    if not isinstance(schema, dict):
        return ()
    return tuple(f["field"] for f in schema.get("fields", []) if isinstance(f, dict))


def key_names(raw_key: bytes | None) -> tuple[str, ...] | None:
    """Key column names of a message key, or None when the key is absent or unreadable."""
    if not raw_key:
        return None
    try:
        schema_bytes, _ = split(raw_key)
        return key_columns(schema_bytes)
    except (BadMessage, orjson.JSONDecodeError, KeyError, TypeError):
        return None
