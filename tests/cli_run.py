"""Run the real ``changelake`` entry point as a subprocess and check how it fails.

Shared by the unit tests (tests/unit/test_cli_errors.py) (stack down: unused ports) and the integration tests (a real lake).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

CHANGELAKE = Path(sys.executable).parent / "changelake"


def unused_ports(n: int) -> list[int]:
    """``n`` loopback ports nothing listens on (bound, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``changelake ARGS`` with only ``env``'s CHANGELAKE_* settings (none inherited)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CHANGELAKE_")}
    full.update(COLUMNS="100", **env)
    return subprocess.run(  # noqa: S603
        [str(CHANGELAKE), *args], env=full, capture_output=True, text=True, timeout=timeout
    )


def assert_clear_error(res: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Exit status ``code``, at most two stderr lines, no traceback; returns stderr."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert 1 <= len(lines) <= 2, res.stderr
    assert lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    for f in fragments:
        assert f in res.stderr, (f, res.stderr)
    return res.stderr
