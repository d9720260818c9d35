"""A preflight finding as data, shared by every check module (``changelake check``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["blocking", "warning", "ok"]


@dataclass(frozen=True)
class Finding:
    """One verified fact: ``name`` is dotted (``postgres.wal_level``), ``fix`` the SQL or
    config that resolves it (empty when nothing needs doing)."""

    name: str
    severity: Severity
    message: str
    fix: str = ""

    def line(self) -> str:
        tail = f" -- fix: {self.fix}" if self.fix and self.severity != "ok" else ""
        return f"{self.severity:<8} {self.name}: {self.message}{tail}"
