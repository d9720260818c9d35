"""Is a service there? A short TCP probe of the address its clients are configured with.

A client left to find out itself waits for its own timeout (kafka-python tries to bootstrap for
30 s or more, and cannot be interrupted while it does); a probe answers in about a second.
The CLI turns a failed probe into a one-line user error, ``changelake run`` into a wait that its
stop request can cut short.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from pipelines.config import Settings

PROBE_TIMEOUT_S = 2.0


def address(settings: Settings, service: str) -> tuple[str, int]:
    """Where ``service`` (postgres, kafka or connect) listens, as the clients are configured
    (managed or external: the first bootstrap server, the Connect REST URL)."""
    if service == "postgres":
        return settings.pg_host, settings.pg_port
    if service == "kafka":
        host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
        return host.strip("[]"), int(port)
    if service == "connect":
        url = urlsplit(settings.connect_url)
        return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
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


def wait_reachable(
    settings: Settings, service: str, stop: Callable[[], bool], every_s: float = 1.0
) -> bool:
    """Probe ``service`` until it answers (True) or ``stop()`` turns true (False); the waits
    between probes are cut into 0.1 s steps so a stop request is seen promptly."""
    while not stop():
        if not unreachable(settings, (service,)):
            return True
        waited = 0.0
        while waited < every_s and not stop():
            time.sleep(0.1)
            waited += 0.1
    return False
