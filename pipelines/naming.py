"""Validation and quoting of names that come from outside (tables, columns, topics).

Source tables may be called anything PostgreSQL accepts: quotes, dots, spaces, unicode,
SQL keywords. Every such name passes through here before it reaches SQL (``quote_ident``)
or a file path (``path_segment``), so no name can inject SQL or escape the lake root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, unquote

_SAFE_PATH = re.compile(r"[A-Za-z0-9_\-]")


class InvalidName(ValueError):
    """A name that cannot be used safely (empty, NUL byte, unbalanced quotes...)."""


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is usable as an identifier, else raise ``InvalidName``."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{what} must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise InvalidName(f"{what} contains a NUL byte: {name!r}")
    if len(name.encode()) > 1024:
        raise InvalidName(f"{what} is longer than 1024 bytes: {name[:40]!r}...")
    return name


def quote_ident(name: str) -> str:
    """Quote an identifier for PostgreSQL and DuckDB (both use SQL-standard double quotes)."""
    check_name(name)
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for PostgreSQL and DuckDB."""
    if "\x00" in value:
        raise InvalidName(f"literal contains a NUL byte: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def path_segment(name: str) -> str:
    """Encode a name as one path segment: reversible, no separators, no dot-files, no ``=``.

    Everything outside ``[A-Za-z0-9_-]`` is percent-encoded (dots too, so ``..`` cannot
    climb out of the lake, and ``=`` too, so Hive partition parsing is never confused).
    """
    check_name(name)
    return "".join(c if _SAFE_PATH.fullmatch(c) else quote(c, safe="") for c in name).replace(
        ".", "%2E"
    )


def from_path_segment(segment: str) -> str:
    """Inverse of ``path_segment``."""
    return unquote(segment)


@dataclass(frozen=True, order=True)
class QualifiedName:
    """A ``schema.table`` pair, parsed from text where either part may be double-quoted."""

    schema: str
    table: str

    def __post_init__(self) -> None:
        check_name(self.schema, "schema name")
        check_name(self.table, "table name")

    @classmethod
    def parse(cls, text: str) -> QualifiedName:
        """Parse ``schema.table``, a double-quoted part (``""`` escapes a quote), or ``table``."""
        names = _split_identifiers(text.strip(), ".")
        if len(names) == 1:
            return cls("public", names[0])
        if len(names) != 2:
            raise InvalidName(f"expected schema.table, got {text!r}")
        return cls(names[0], names[1])

    def __str__(self) -> str:
        return f"{_render(self.schema)}.{_render(self.table)}"

    @property
    def data_collection(self) -> str:
        """Debezium's name of the table in transaction ENDs (``data_collections``):
        ``schema.table``, raw, as the connector writes it."""
        return f"{self.schema}.{self.table}"

    @property
    def sql(self) -> str:
        """Quoted for SQL: ``"schema"."table"``."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    @property
    def path(self) -> PurePosixPath:
        """Relative lake path ``<schema>/<table>``, both segments safely encoded."""
        return PurePosixPath(path_segment(self.schema), path_segment(self.table))

    @property
    def asset_name(self) -> str:
        """A Dagster-safe name (``[A-Za-z0-9_]``), distinct for distinct tables.

        Ordinary names stay readable (``shop__customers``); any other part is escaped whole
        behind a ``Z0`` marker with no underscores, so the ``__`` separator stays unambiguous.
        """
        return f"{_asset_part(self.schema)}__{_asset_part(self.table)}"

    @property
    def include_list_regex(self) -> str:
        """The anchored regex Debezium's ``table.include.list`` needs for exactly this table."""
        return f"{re.escape(self.schema)}\\.{re.escape(self.table)}"


def split_name_list(text: str) -> list[str]:
    """Split a comma-separated list of (possibly quoted) qualified names."""
    return [t for t in (_join(p) for p in _split_raw(text, ",")) if t]


def _asset_part(part: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)*", part) and not part.startswith("Z0"):
        return part
    return "Z0" + "".join(
        c if c.isascii() and c.isalnum() and c != "x" else f"x{ord(c):x}x" for c in part
    )


def _render(part: str) -> str:
    return part if re.fullmatch(r"[a-z_][a-z0-9_]*", part) else quote_ident(part)


def _split_raw(text: str, sep: str) -> list[list[str]]:
    """Split on ``sep`` outside double quotes; return each piece as its raw characters."""
    pieces: list[list[str]] = [[]]
    in_quote = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
        if ch == sep and not in_quote:
            pieces.append([])
        else:
            pieces[-1].append(ch)
    if in_quote:
        raise InvalidName(f"unbalanced double quote in {text!r}")
    return pieces


def _join(chars: list[str]) -> str:
    return "".join(chars).strip()


def _split_identifiers(text: str, sep: str) -> list[str]:
    """Split ``a.b`` into identifiers, unquoting ``"..."`` parts (``""`` is a literal quote)."""
    out = []
    for raw in _split_raw(text, sep):
        piece = _join(raw)
        if len(piece) >= 2 and piece[0] == '"' and piece[-1] == '"':
            piece = piece[1:-1].replace('""', '"')
        elif '"' in piece:
            raise InvalidName(f"misplaced double quote in {text!r}")
        out.append(check_name(piece, "identifier"))
    return out
