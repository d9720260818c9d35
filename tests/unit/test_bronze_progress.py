"""The follow run's progress line, graceful stop on signals, and summary."""

from __future__ import annotations

import os
import signal

import pytest

from pipelines.bronze.lander import LandingResult
from pipelines.bronze.progress import ProgressMeter, stop_on_signals, summary_line

pytestmark = pytest.mark.unit


def test_first_signal_requests_a_stop_second_interrupts_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_progress_line_rate_is_over_the_last_interval() -> None:
    meter = ProgressMeter(every=0.0)
    assert meter.due()
    first = meter.line(1000, 0, 12)
    assert first.startswith("1,000 events landed") and "lag 12 record(s)" in first
    line = meter.line(1000, 2, None)
    assert " 0 events/s" in line and "lag unknown" in line and "2 quarantined" in line


def test_summary_names_the_signal() -> None:
    r = LandingResult(events=10, messages=12, seconds=2.0, lag={"t[0]": 3})
    text = summary_line(r, "SIGTERM")
    assert text.startswith("stopped by SIGTERM: landed 10 events (12 records)")
    assert "5 events/s" in text and "lag at the end 3" in text
