"""Turn a stage's result object (a dataclass or NamedTuple) into Dagster metadata, generically.

Stages own their result types; the code location shows every field without knowing them,
so a field added later appears in the UI with no change here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import dagster as dg


def result_fields(result: object) -> dict[str, object]:
    """Field name -> value of a dataclass, NamedTuple or plain object."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    if hasattr(result, "_asdict"):
        return dict(result._asdict())  # type: ignore[attr-defined]
    return {k: v for k, v in vars(result).items() if not k.startswith("_")}


def to_metadata_value(value: object) -> dg.MetadataValue:
    """The most readable MetadataValue for ``value``."""
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, Path):
        return dg.MetadataValue.path(str(value))
    if isinstance(value, datetime):
        return dg.MetadataValue.text(value.isoformat())
    if isinstance(value, Mapping | list | tuple | set):
        return dg.MetadataValue.json(jsonable(value))
    if value is None:
        return dg.MetadataValue.null()
    return dg.MetadataValue.text(str(value))


def jsonable(value: object) -> object:
    """JSON-safe copy: tuple keys become ``a/b``, unknown objects their ``str``."""
    if isinstance(value, Mapping):
        return {
            ("/".join(map(str, k)) if isinstance(k, tuple) else str(k)): jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        items = [jsonable(v) for v in value]
        return items if len(items) <= 50 else [*items[:50], f"... {len(items) - 50} more"]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def result_metadata(result: object, *, prefix: str = "") -> dict[str, dg.MetadataValue]:
    """Every field of ``result`` as metadata (``prefix`` + field name)."""
    return {f"{prefix}{k}": to_metadata_value(v) for k, v in result_fields(result).items()}
