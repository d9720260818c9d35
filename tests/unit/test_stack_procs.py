"""Process bookkeeping: ``down`` must only ever stop the program ``up`` started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.stack import jvm
from pipelines.stack.layout import Layout
from pipelines.stack.procs import StackError, live_pid, spawn, terminate

pytestmark = pytest.mark.unit


def test_live_pid_checks_the_command_line(tmp_path) -> None:  # noqa: ANN001
    pid_file = tmp_path / "x.pid"
    marker = str(tmp_path / "marker-arg")
    pid = spawn(
        [sys.executable, "-c", "import time; time.sleep(30)", marker],
        log=tmp_path / "x.log",
        pid_file=pid_file,
    )
    try:
        assert live_pid(pid_file, marker) == pid
        assert live_pid(pid_file, "/some/other/home") is None  # a reused pid is not ours
        terminate(pid, "/some/other/home", timeout=1)  # refuses: not our program
        assert live_pid(pid_file, marker) == pid
    finally:
        terminate(pid, marker, timeout=10)
    assert live_pid(pid_file, marker) is None


def test_stale_or_garbage_pid_file(tmp_path) -> None:  # noqa: ANN001
    pid_file = tmp_path / "x.pid"
    assert live_pid(pid_file, "m") is None
    pid_file.write_text("not a pid")
    assert live_pid(pid_file, "m") is None
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid_file.write_text(done.stdout)  # exited process
    assert live_pid(pid_file, "m") is None


def test_missing_tool_is_one_clear_line(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(jvm.shutil, "which", lambda name: None)
    with pytest.raises(StackError) as info:
        jvm.require_tool("mvn", "maven")
    assert str(info.value) == "`mvn` not found on PATH: install it (Debian: apt-get install maven)"


def test_jar_marker_tracks_the_pom(tmp_path) -> None:  # noqa: ANN001
    layout = Layout(tmp_path)
    assert not jvm.jars_resolved(layout, "kafka")
    layout.jars.mkdir()
    layout.jar_marker("kafka").write_text("stale-hash\n")
    assert not jvm.jars_resolved(layout, "kafka")
    layout.jar_marker("kafka").write_text(jvm._pom_hash("kafka") + "\n")
    assert jvm.jars_resolved(layout, "kafka")


def test_poms_pin_slf4j2_for_the_log4j2_backend() -> None:
    for name in ("kafka", "connect"):
        text = jvm.pom(name).read_text()
        assert "<slf4j.version>2.0." in text and "log4j-slf4j2-impl" in text
