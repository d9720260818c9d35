"""Checking what the user typed before any work starts: table names, instants, key values.

Each check raises ``BadInput`` (exit status 2) with what is wrong and what would be right, so a
typo never reaches Kafka or DuckDB to come back as a client exception or a generated query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.bronze import bronze_tables
from pipelines.cli.errors import BadInput, UserError
from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.silver.timetravel import to_instant

_SHOWN_TABLES = 8


def _names(tables: list[QualifiedName]) -> str:
    shown = ", ".join(str(t) for t in tables[:_SHOWN_TABLES])
    more = len(tables) - _SHOWN_TABLES
    return (shown + (f" and {more} more" if more > 0 else "")) or "none"


def table_arg(settings: Settings, text: str, *, landed_ok: bool = True) -> QualifiedName:
    """A captured table (``CHANGELAKE_TABLES``) or, with ``landed_ok``, one the lake holds."""
    qn = QualifiedName.parse(text)  # InvalidName: BadInput in the handler
    known = list(settings.captured)
    if landed_ok:
        known += [t for t in bronze_tables(settings.lake_root) if isinstance(t, QualifiedName)]
    if qn in known:
        return qn
    raise BadInput(
        f"unknown table {qn}",
        f"captured tables (CHANGELAKE_TABLES): {_names(list(settings.captured))}",
    )


def instant_arg(text: str, what: str = "INSTANT") -> tuple[datetime, str | None]:
    """An ISO-8601 instant, and a note to print once the command succeeded: one without a time
    zone is read as UTC, and the note says so."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"{what} is not an ISO-8601 instant: {text!r}",
            "write it like 2026-11-27T14:00:00+00:00 (date, time and time zone)",
        ) from None
    ts = to_instant(parsed)  # the Python API's rule for naive instants
    if parsed.tzinfo is None:
        return ts, f"note: {what} has no time zone; read as UTC: {ts.isoformat()}"
    return ts, None


def key_values(settings: Settings, table: QualifiedName, values: list[str]) -> list[Any]:
    """``values`` typed as ``table``'s primary-key columns, checked one by one."""
    from pipelines.lakeformat import key_schema

    keys, schema = key_schema(settings, table)  # nothing landed yet: a runtime error
    if not keys:
        raise BadInput(f"{table} has no primary key, so rows have no history to follow")
    if len(values) != len(keys):
        raise BadInput(
            f"{table} has a {len(keys)}-column key ({', '.join(keys)}) but got "
            f"{len(values)} value(s)",
            f"give one value per key column, in that order: changelake history {table} "
            + " ".join(k.upper() for k in keys),
        )
    out: list[Any] = []
    for name, value in zip(keys, values, strict=True):
        typ = schema.field(name).type
        try:
            out.append(pa.array([value], pa.string()).cast(typ)[0].as_py())
        except pa.ArrowNotImplementedError:  # no string cast for this type: DuckDB converts
            out.append(value)
        except pa.ArrowInvalid:
            raise BadInput(f"key column {name} is {typ}: {value!r} is not a valid value") from None
    return out


def columns_arg(text: str | None, available: list[str]) -> list[str] | None:
    """``--columns a,b``: the named columns, each one that exists."""
    if text is None:
        return None
    wanted = [c.strip() for c in text.split(",") if c.strip()]
    missing = [c for c in wanted if c not in available]
    if missing or not wanted:
        raise BadInput(
            f"--columns: no column {', '.join(missing) or '(empty list)'}",
            f"columns: {', '.join(available)}",
        )
    return wanted


def parquet_lake_only(settings: Settings, command: str, instead: str) -> None:
    """Refuse ``command`` on the Iceberg-stored lake (CHANGELAKE_LAKE_FORMAT=iceberg), which it
    would find empty: one line saying so, and ``instead``."""
    if settings.lake_format == "iceberg":
        raise UserError(
            f"`changelake {command}` works on the Parquet lake; "
            "this lake is stored in Iceberg (CHANGELAKE_LAKE_FORMAT=iceberg)",
            instead,
        )
