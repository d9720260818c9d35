"""Claim-checked domain events (``pipelines/claimcheck.py``): the stored payload, typed as if inline.

An inline event's payload schema is the one Debezium's Outbox Event Router inferred from the
JSON document (``table.expand.json.payload``). A claim-checked event carries only the
reference, so the lander infers the stored document's schema by the router's own rules and
the event lands in the same bronze table with the same column types an inline event of that
document would have had:

* string -> string, boolean -> boolean; an integer -> int32 when it fits, else int64 when it
  fits, else float64; any other number -> float64;
* an object -> an optional struct named by its key path (``payload``, ``payload.items``),
  fields in document order, null fields and empty arrays left out;
* an array -> the schema of its first non-null element; every element must be of that kind
  (numbers of that same schema), and the struct schemas of object elements are merged (fields
  of later elements appended). An array the router could not type (mixed, or only nulls) is a
  bad message here too.

``tests/unit/test_decode_claims.py`` checks these rules against every payload schema the real
connector wrote into ``tests/fixtures/debezium/outbox.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from pipelines.claimcheck import ClaimError, load
from pipelines.decode.envelope import BadMessage

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _number(value: float) -> dict:
    if isinstance(value, int):
        for lo_hi, name in ((_INT32, "int32"), (_INT64, "int64")):
            if lo_hi[0] <= value <= lo_hi[1]:
                return {"type": name, "optional": True}
    return {"type": "double", "optional": True}


def _merge(left: dict | None, right: dict) -> dict:
    if left is None:
        return right
    names = {f["field"] for f in left["fields"]}
    extra = [f for f in right["fields"] if f["field"] not in names]
    return {**left, "fields": left["fields"] + extra}


def _array(key: str, values: list) -> dict:
    present = [v for v in values if v is not None]
    if not present:
        raise ClaimError(f"array {key!r} has only nulls: no element type to infer")
    kind = _kind(present[0])
    if any(_kind(v) != kind for v in present):
        raise ClaimError(f"array {key!r} is not homogenous")
    if kind == "object":
        item = None
        seen: list[dict] = []
        for element in present:
            schema = infer_schema(key, element)
            if schema not in seen:
                seen.append(schema)
                item = _merge(item, schema)
    else:
        item = infer_schema("", present[0])
        if item is None:
            raise ClaimError(f"array {key!r} has an element of no inferable type")
        if kind == "number" and any(_number(v) != item for v in present):
            raise ClaimError(f"array {key!r} mixes number types")
    return {"type": "array", "items": item, "optional": True}


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "other")


def infer_schema(key: str, value: object) -> dict | None:
    """The Connect schema the router infers for ``value`` at ``key`` (None: left out)."""
    kind = _kind(value)
    if kind == "string":
        return {"type": "string", "optional": True}
    if kind == "boolean":
        return {"type": "boolean", "optional": True}
    if kind == "number":
        return _number(value)
    if kind == "array":
        return _array(key, value) if value else None
    if kind == "object":
        fields = []
        for name, sub in value.items():
            schema = infer_schema(f"{key}.{name}" if key else name, sub)
            if schema is not None and all(f["field"] != name for f in fields):
                fields.append({**schema, "field": name})
        return {"type": "struct", "fields": fields, "optional": True, "name": key}
    return None


def _parse(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # integers beyond 64 bits (the router types them float64)


def resolve(schema_bytes: bytes, payload: dict, lake: Path | None) -> bytes:
    """Replace a claim-checked event's reference by its stored payload (in ``payload``) and
    return the value schema it would have had inline; ``BadMessage`` if the claim does not
    resolve."""
    if lake is None:
        raise BadMessage("claim-checked event, but no lake to resolve its claim from")
    try:
        data = load(lake, payload["aggregate_type"], payload["event_id"], payload["payload"])
        document = _parse(data)
        if not isinstance(document, dict):
            raise ClaimError("claimed payload is not a JSON object")
        schema = orjson.loads(schema_bytes)
        fields = schema["fields"]
        (i,) = [n for n, f in enumerate(fields) if f.get("field") == "payload"]
        inferred = infer_schema(fields[i].get("name") or "payload", document)
    except (ClaimError, ValueError, RecursionError) as exc:
        raise BadMessage(f"claim check: {exc}") from None
    payload["payload"] = document
    fields[i] = {**inferred, "field": "payload"}
    return orjson.dumps(schema)
