"""The demo shop's order API as one of the stack's processes (``up`` starts, ``down`` stops).

``python -m pipelines.shop.api --pidfile <run>/order-api.pid`` with this stack's settings in
its environment; the pid file's path in its command line is the marker ``down`` checks, so a
reused pid is never killed. Not started when ``CHANGELAKE_ORDER_API_PORT=0``.
"""

from __future__ import annotations

import os
import sys
import urllib.request

from pipelines.config import Settings, settings_env
from pipelines.stack.layout import Layout
from pipelines.stack.procs import StackFatal, live_pid, log_tail, recorded_alive, spawn, terminate
from pipelines.stack.procs import wait_until as _wait_until

NAME = "order-api"


def _marker(layout: Layout) -> str:
    return str(layout.pid_file(NAME))


def pid(layout: Layout) -> int | None:
    return live_pid(layout.pid_file(NAME), _marker(layout))


def healthy(settings: Settings) -> bool:
    url = f"http://{settings.bind_host}:{settings.order_api_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our loopback URL
            return resp.status == 200
    except OSError:
        return False


def start(settings: Settings, layout: Layout, timeout: float) -> None:
    if not pid(layout):
        spawn(
            [sys.executable, "-m", "pipelines.shop.api", "--pidfile", _marker(layout)],
            log=layout.log_file(NAME),
            pid_file=layout.pid_file(NAME),
            env={**os.environ, **settings_env(settings)},
        )

    def check() -> bool:
        if not recorded_alive(layout.pid_file(NAME)):
            raise StackFatal(f"{NAME} exited during start\n" + log_tail(layout.log_file(NAME)))
        return healthy(settings)

    _wait_until(check, timeout=timeout, what=NAME, log=layout.log_file(NAME), interval=0.2)


def stop(layout: Layout) -> None:
    p = pid(layout)
    if p:
        terminate(p, _marker(layout), timeout=10)
    layout.pid_file(NAME).unlink(missing_ok=True)
