"""Iceberg namespaces and table identifiers for captured tables.

Every captured table ``schema.table`` becomes one identifier per layer, e.g.
``("bronze", "shop__customers")``. The table part is also a directory under the warehouse and
a name other engines (Spark, Trino, which fold case) must be able to type, so it only ever
holds ``[a-z0-9_]``: plain lower-case names stay readable, any other part is escaped whole
behind a ``z0`` marker (``x<hex>x`` per character, ``x`` itself escaped) with no underscores,
so the ``__`` separator is unambiguous and the mapping is reversible (``from_identifier``).
"""

from __future__ import annotations

import re

from pipelines.bronze.layout import NOTIFICATIONS, TRANSACTIONS
from pipelines.naming import InvalidName, QualifiedName

BRONZE = "bronze"
SILVER = "silver"
QUARANTINE = "quarantine"
ENRICHED = "enriched"  # the enrichment's output (pipelines.enrich.output)
NAMESPACES = (BRONZE, SILVER, QUARANTINE, ENRICHED)
BRONZE_OWN_TABLES = (TRANSACTIONS, NOTIFICATIONS)  # bronze tables that are no captured table

# the SQL catalog's table_name column (Iceberg's JDBC catalog layout) is VARCHAR(255)
MAX_TABLE_NAME = 255
_READABLE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
_ESCAPE = re.compile(r"x([0-9a-f]+)x|([a-wyz0-9])")
_SEP = "__"


def _encode_part(part: str) -> str:
    if _READABLE.fullmatch(part) and not part.startswith("z0"):
        return part
    return "z0" + "".join(
        c if c.isascii() and (c.isdigit() or c.islower()) and c != "x" else f"x{ord(c):x}x"
        for c in part
    )


def _decode_part(text: str) -> str:
    if not text.startswith("z0"):
        if not _READABLE.fullmatch(text):
            raise InvalidName(f"not a changelake Iceberg table name part: {text!r}")
        return text
    body, out, pos = text[2:], [], 0
    while pos < len(body):
        m = _ESCAPE.match(body, pos)
        if m is None:
            raise InvalidName(f"bad escape in Iceberg table name part: {text!r}")
        out.append(chr(int(m.group(1), 16)) if m.group(1) else m.group(2))
        pos = m.end()
    decoded = "".join(out)
    if _encode_part(decoded) != text:  # one spelling per name, or two tables could collide
        raise InvalidName(f"not the canonical spelling of an Iceberg table name part: {text!r}")
    return decoded


def table_name(name: QualifiedName) -> str:
    """The Iceberg table name (within a layer's namespace) of captured table ``name``."""
    encoded = f"{_encode_part(name.schema)}{_SEP}{_encode_part(name.table)}"
    if len(encoded) > MAX_TABLE_NAME:
        raise InvalidName(
            f"{name}: its Iceberg table name would be {len(encoded)} characters "
            f"(the catalog allows {MAX_TABLE_NAME})"
        )
    return encoded


def identifier(layer: str, name: QualifiedName | str) -> tuple[str, str]:
    """The pyiceberg identifier of ``name`` in ``layer`` (bronze, silver or quarantine).

    Bronze's own tables ``_transactions`` and ``_notifications`` keep their names: a leading
    underscore never starts an encoded captured-table name, so they cannot collide.
    """
    if layer not in NAMESPACES:
        raise InvalidName(f"unknown lake layer {layer!r}; expected one of {', '.join(NAMESPACES)}")
    if isinstance(name, str):
        if layer == QUARANTINE:
            return (layer, quarantine_table_name(name))
        if layer != BRONZE or name not in BRONZE_OWN_TABLES:
            raise InvalidName(f"{name!r} is not a table of the {layer} layer")
        return (layer, name)
    return (layer, table_name(name))


def quarantine_table_name(topic: str) -> str:
    """The quarantine table of Kafka ``topic``: its dot-separated parts encoded like a captured
    table's (``changelake.shop.orders`` -> ``changelake__shop__orders``), reversibly."""
    encoded = _SEP.join(_encode_part(part) for part in topic.split("."))
    if len(encoded) > MAX_TABLE_NAME:
        raise InvalidName(f"topic {topic!r}: its quarantine table name is too long")
    return encoded


def topic_from_quarantine_name(text: str) -> str:
    """Inverse of ``quarantine_table_name``."""
    return ".".join(_decode_part(part) for part in text.split(_SEP))


def from_table_name(text: str) -> QualifiedName:
    """Inverse of ``table_name``."""
    schema, sep, table = text.partition(_SEP)
    if not sep:
        raise InvalidName(f"not a changelake Iceberg table name: {text!r}")
    return QualifiedName(_decode_part(schema), _decode_part(table))
