"""Start, find and stop the stack's own processes, by pid file.

``down`` must stop only what ``up`` started: a pid file can outlive its process and the pid be
reused by an unrelated program, so every pid is checked against the process's command line
(it must contain a marker unique to this stack instance, such as its config file path).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A stack operation failed; the message names the component and where to look."""


class StackFatal(StackError):
    """A failure that waiting longer cannot fix (process exited, task FAILED): stop polling."""


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces, or ``""`` if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\x00", b" ").decode(errors="replace")


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def live_pid(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process is alive and is ours, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if pid <= 0 or is_zombie(pid):
        return None
    return pid if marker in cmdline(pid) else None


def recorded_alive(pid_file: Path) -> bool:
    """Whether the process we just spawned (pid file) still exists, without the marker check:
    right after exec its /proc cmdline can briefly read empty, which is not an exit."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    _reap(pid)
    return Path(f"/proc/{pid}").exists() and not is_zombie(pid)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (for ``status`` and the report)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def spawn(
    argv: Sequence[str], *, log: Path, pid_file: Path, env: dict[str, str] | None = None
) -> int:
    """Start a long-running program detached (own session), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by us, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def terminate(pid: int, marker: str, *, timeout: float = 30.0) -> None:
    """SIGTERM, wait for a clean exit (JVMs flush offsets), SIGKILL after ``timeout``."""
    if marker not in cmdline(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if is_zombie(pid) or marker not in cmdline(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        _reap(pid)
        if is_zombie(pid) or marker not in cmdline(pid):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def run(argv: Sequence[str], *, what: str, log: Path | None = None, **kw: object) -> str:
    """Run a short command; on failure raise StackError naming ``what`` with its output."""
    res = subprocess.run(list(argv), capture_output=True, text=True, **kw)  # noqa: S603
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            fh.write(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
        where = f" (log: {log})" if log else ""
        raise StackError(f"{what} failed{where}: " + " | ".join(tail))
    return res.stdout


def log_tail(*logs: Path, lines: int = 8) -> str:
    """Last lines of the given logs (ERROR lines preferred), to put the cause in an error."""
    out = []
    for log in logs:
        try:
            text = log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        errors = [ln for ln in text if " ERROR " in ln or "Exception" in ln]
        picked = (errors or text)[-lines:]
        if picked:
            out.append(f"--- {log} ---\n" + "\n".join(ln[:300] for ln in picked))
    return "\n".join(out)


def wait_until(check, *, timeout: float, what: str, log: Path | None, interval: float = 0.3):  # noqa: ANN001, ANN201
    """Poll ``check()`` until it returns a truthy value; StackError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except StackFatal:
            raise
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last = exc
        if time.monotonic() >= deadline:
            detail = f": {last}" if last else ""
            where = f"; see {log}" if log else ""
            raise StackError(f"{what} not healthy after {timeout:.0f}s{detail}{where}")
        time.sleep(interval)


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def check_port_free(component: str, host: str, port: int, grace: float = 15.0) -> None:
    """Fail clearly when another program holds the port. ``grace``: a port we freed a moment
    ago (restart) can still answer briefly, so it is re-checked for that long first."""
    deadline = time.monotonic() + grace
    while port_taken(host, port) and time.monotonic() < deadline:
        time.sleep(0.5)
    if port_taken(host, port):
        raise StackError(
            f"{component}: port {host}:{port} is already in use by another program "
            f"(not started by this CHANGELAKE_HOME); choose another port in Settings"
        )
