"""Fail fast when a service a command needs is not there (``pipelines.stack.reach`` probes it).

Without it, a command run while the stack is down waits for its client's own timeout and then
dies with that client's exception. ``require`` checks in about a second and raises a
``UserError`` that names the service, its address and the fix.
"""

from __future__ import annotations

from pipelines.cli.errors import UP_HINT, UserError
from pipelines.config import Settings
from pipelines.stack.reach import address, unreachable

LABELS = {"postgres": "PostgreSQL", "kafka": "Kafka", "connect": "Kafka Connect"}
SERVICES = tuple(LABELS)


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
