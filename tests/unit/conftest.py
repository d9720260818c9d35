"""Unit tests see no CHANGELAKE_* environment: the session stack (tests/conftest.py) exports
its ports, prefix and opt-outs for the integration tests, and a unit test that builds
``Settings`` must get the documented defaults whatever ran before it in the session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_changelake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("CHANGELAKE_")]:
        monkeypatch.delenv(key)
