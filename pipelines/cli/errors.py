"""How the ``changelake`` command line fails: one or two lines on stderr and an exit status.

Every command runs inside ``Group.invoke`` below, so every command gets the same handling:
``UserError`` (raised by the CLI itself) and the known exceptions of the libraries underneath
(Kafka, PostgreSQL, Kafka Connect, a lake from another cluster, a bad name or setting) print
``error: <what is wrong>`` and, indented, what to do; exit status 2 for bad usage, 1 for a
runtime failure. Anything else is a bug: one line naming it and ``--debug``. The full traceback
is shown only with ``changelake --debug ...`` or ``CHANGELAKE_DEBUG=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import Context
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover - older typer on click itself
    from click import Context
    from click import exceptions as cx

UP_HINT = "start the stack with `changelake up`"
SLOW_HINT = "is the stack up? `changelake status` shows what runs; `changelake up` starts it"
DEBUG_ENV = "CHANGELAKE_DEBUG"


class UserError(Exception):
    """An expected failure: ``message`` says what is wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class BadInput(UserError):
    """The command line itself is wrong (a name, a value, a filter): exit status 2."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def user_input(what: str, hint: str | None = None) -> Iterator[None]:
    """DuckDB errors raised inside are the user's SQL (``--where``), not a bug: ``BadInput``."""
    import duckdb

    try:
        yield
    except (
        duckdb.BinderException,
        duckdb.ParserException,
        duckdb.ConversionException,
        duckdb.InvalidInputException,
        duckdb.PermissionException,  # the filter tried to read a file
    ) as exc:
        msg = first_line(exc).split(": ", 1)[-1]
        raise BadInput(f"{what}: {msg}", hint) from exc


def _settings() -> Any:
    from pipelines.config import get_settings

    try:
        return get_settings()
    except Exception:  # noqa: BLE001 - only used to name an address in a message
        return None


def translate(exc: Exception) -> UserError | None:
    """The ``UserError`` a known exception means, or None (a bug)."""
    if isinstance(exc, UserError):
        return exc
    from pydantic import ValidationError

    from pipelines.bronze.assignment import InvalidMember
    from pipelines.bronze.lander import LanderBusy
    from pipelines.bronze.reader import NoBronzeData
    from pipelines.bronze.source import LakeSourceMismatch
    from pipelines.dbtscaffold import ScaffoldError
    from pipelines.naming import InvalidName
    from pipelines.service.state import AlreadyRunning
    from pipelines.silver import NoSilverData
    from pipelines.stack import StackError

    if isinstance(exc, InvalidName):
        return BadInput(str(exc))
    if isinstance(exc, ValidationError):
        fields = ", ".join(
            f"CHANGELAKE_{'_'.join(map(str, e['loc'])).upper()}" for e in exc.errors()
        )
        return BadInput(
            f"invalid setting {fields}: {exc.errors()[0]['msg']}",
            "fix it in the environment or .env",
        )
    if isinstance(exc, InvalidMember):
        return BadInput(
            f"invalid setting CHANGELAKE_LANDER_MEMBER: {exc}", "fix it in the environment or .env"
        )
    if isinstance(exc, ScaffoldError):
        return UserError(str(exc), "see `changelake dbt scaffold --help`")
    if isinstance(exc, LakeSourceMismatch):
        return UserError(str(exc))
    if isinstance(exc, AlreadyRunning):
        return UserError(str(exc), "one `changelake run` per lake: stop it first (SIGTERM)")
    if isinstance(exc, LanderBusy):
        return UserError(str(exc), "one lander per lake: wait for it, or stop it first")
    if isinstance(exc, NoSilverData | NoBronzeData):
        return UserError(
            str(exc), "land and compact first: `changelake land && changelake compact`"
        )
    if isinstance(exc, StackError):
        return UserError(first_line(exc), "`changelake logs COMPONENT` shows the service logs")
    return _service_error(exc)


def _service_error(exc: Exception) -> UserError | None:
    """Kafka, PostgreSQL or Kafka Connect not answering, whichever client noticed."""
    import urllib.error

    import psycopg
    from kafka import errors as kafka_errors

    kafka_down = tuple(
        getattr(kafka_errors, n)
        for n in ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError")
        if hasattr(kafka_errors, n)  # kafka-python 3 folded NoBrokersAvailable into the others
    )
    s = _settings()
    if isinstance(exc, kafka_down):
        where = s.bootstrap_servers if s else "CHANGELAKE_KAFKA_PORT"
        return UserError(f"Kafka at {where} did not answer ({first_line(exc)})", SLOW_HINT)
    if isinstance(exc, psycopg.OperationalError):
        where = f"{s.pg_host}:{s.pg_port}" if s else "CHANGELAKE_PG_PORT"
        auth = "authentication failed" in str(exc)
        hint = "check CHANGELAKE_PG_USER and CHANGELAKE_PG_PASSWORD" if auth else SLOW_HINT
        return UserError(f"PostgreSQL at {where}: {first_line(exc)}", hint)
    connect_errors: tuple[type[Exception], ...] = (urllib.error.URLError,)
    try:
        import requests

        connect_errors += (requests.ConnectionError,)
    except ImportError:  # pragma: no cover - requests comes with dagster
        pass
    if isinstance(exc, connect_errors):
        where = s.connect_url if s else "CHANGELAKE_CONNECT_PORT"
        return UserError(f"Kafka Connect at {where} did not answer ({first_line(exc)})", SLOW_HINT)
    from sqlalchemy.exc import OperationalError as CatalogDown

    if isinstance(exc, CatalogDown):  # pyiceberg's SQL catalog (the password is not shown)
        from sqlalchemy.engine import make_url

        where = make_url(s.iceberg_catalog_url).render_as_string(hide_password=True) if s else ""
        return UserError(
            f"the Iceberg catalog {where} did not answer ({first_line(exc.orig or exc)})",
            "check CHANGELAKE_ICEBERG_CATALOG_URI (empty: a SQLite file under the lake)",
        )
    import duckdb

    if isinstance(exc, duckdb.IOException):  # e.g. a DuckDB file another process holds open
        return UserError(first_line(exc), "close the other program or open the file read-only")
    if isinstance(exc, OSError) and exc.filename is not None:  # e.g. --output into a missing dir
        return UserError(str(exc))
    return None


def debugging(ctx: Context | None = None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    flag = bool(root and root.params.get("debug"))
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


def report(message: str, hint: str | None) -> None:
    typer.secho("error: ", fg="red", bold=True, err=True, nl=False)
    typer.echo(" ".join(message.splitlines()), err=True)  # one line, whatever the source
    if hint:
        typer.echo(f"  {hint}", err=True)


class Group(TyperGroup):
    """The root command group: runs a command and turns its failure into one clear line."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except cx.NoArgsIsHelpError:
            raise  # `changelake shop` alone: typer prints the help
        except cx.UsageError as exc:
            if debugging(ctx):
                raise
            path = exc.ctx.command_path if exc.ctx else ctx.command_path
            report(exc.format_message(), f"see `{path} --help`")
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, cx.ClickException):
            raise
        except Exception as exc:
            if debugging(ctx):
                raise
            err = translate(exc)
            if err is None:
                report(
                    f"internal error: {type(exc).__name__}: {first_line(exc)}",
                    "rerun with `changelake --debug ...` for the traceback, and please report it",
                )
                raise typer.Exit(1) from None
            report(err.message, err.hint)
            raise typer.Exit(err.exit_code) from None
