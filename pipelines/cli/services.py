"""Fail fast when a service a command needs is not there: a short TCP probe of its address.

Without it, a command run while the stack is down waits for its client's own timeout (kafka-python
tries to bootstrap for 30 s or more) and then dies with that client's exception. ``require`` checks
in about a second and raises a ``UserError`` that names the service, its address and the fix.
"""

from __future__ import annotations

import socket

from pipelines.cli.errors import UP_HINT, UserError
from pipelines.config import Settings

PROBE_TIMEOUT_S = 2.0

LABELS = {"postgres": "PostgreSQL", "kafka": "Kafka", "connect": "Kafka Connect"}
SERVICES = tuple(LABELS)


def address(settings: Settings, service: str) -> tuple[str, int]:
    """Where ``service`` (postgres, kafka or connect) listens, as the clients are configured."""
    if service == "postgres":
        return settings.pg_host, settings.pg_port
    if service == "kafka":
        return settings.bind_host, settings.kafka_port
    if service == "connect":
        return settings.bind_host, settings.connect_port
    raise ValueError(f"unknown service {service!r}")


def unreachable(settings: Settings, services: tuple[str, ...]) -> dict[str, str]:
    """``{service: reason}`` for each of ``services`` that accepts no TCP connection."""
    down = {}
    for name in services:
        host, port = address(settings, name)
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        except OSError as exc:
            down[name] = exc.strerror or type(exc).__name__.lower()
    return down


def require(settings: Settings, *services: str, any_up: bool = False) -> None:
    """Raise ``UserError`` unless every one of ``services`` answers (``any_up``: at least one)."""
    down = unreachable(settings, services)
    if not down or (any_up and len(down) < len(services)):
        return
    parts = [f"{LABELS[n]} at {':'.join(map(str, address(settings, n)))}" for n in down]
    reason = next(iter(down.values())).lower()
    if len(down) == 1:
        raise UserError(f"{parts[0]} is not reachable ({reason})", UP_HINT)
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    raise UserError(f"the stack is down: {listed} are not reachable ({reason})", UP_HINT)
