"""What ``changelake status`` reports: each component with pid/port/RSS, the connector and its
tasks, the replication slot's lag, and the end offset of every topic. Never raises because a
component is down: a down component is reported as such."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.config import Settings
from pipelines.stack import connect, kafka, late_tables, postgres
from pipelines.stack.layout import Layout
from pipelines.stack.procs import rss_bytes


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    port: int
    up: bool
    rss_bytes: int = 0
    error: str | None = None


@dataclass(frozen=True)
class StackStatus:
    components: tuple[ComponentStatus, ...]
    connector_state: str | None = None
    task_states: tuple[str, ...] = ()
    slot_lag_bytes: int | None = None
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    capture_findings: tuple[str, ...] = ()  # captured changes going missing (late_tables)

    @property
    def healthy(self) -> bool:
        """Every component answers and the connector and all its tasks are RUNNING."""
        return (
            all(c.up for c in self.components)
            and self.connector_state == "RUNNING"
            and bool(self.task_states)
            and all(s == "RUNNING" for s in self.task_states)
            and not self.capture_findings
        )

    def component(self, name: str) -> ComponentStatus:
        return next(c for c in self.components if c.name == name)


def _probe(name: str, pid: int | None, port: int, check) -> ComponentStatus:  # noqa: ANN001
    if pid is None:
        return ComponentStatus(name, None, port, False)
    try:
        ok = bool(check())
        return ComponentStatus(name, pid, port, ok, rss_bytes(pid))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return ComponentStatus(
            name, pid, port, False, rss_bytes(pid), f"{type(exc).__name__}: {exc}"
        )


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """End offset per (topic, partition) for every non-internal topic."""
    return kafka.end_offsets(settings)


def status(settings: Settings) -> StackStatus:
    layout = Layout.of(settings)
    comps = (
        _probe(
            "postgres", postgres.pid(layout), settings.pg_port, lambda: postgres.healthy(settings)
        ),
        _probe("kafka", kafka.pid(layout), settings.kafka_port, lambda: kafka.healthy(settings)),
        _probe(
            "connect", connect.pid(layout), settings.connect_port, lambda: connect.healthy(settings)
        ),
    )
    up = {c.name: c.up for c in comps}
    errors: list[str] = []
    state, tasks, lag, offsets, findings = None, (), None, {}, ()
    if up["connect"]:
        try:
            st = connect.connector_status(settings)
            if st:
                state = st.get("connector", {}).get("state")
                tasks = tuple(t.get("state", "?") for t in st.get("tasks") or [])
        except Exception as exc:  # noqa: BLE001
            errors.append(f"connector status: {exc}")
    if up["postgres"]:
        try:
            lag = postgres.slot_lag_bytes(settings)
            findings = tuple(str(f) for f in late_tables.findings(settings))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"slot lag: {exc}")
    if up["kafka"]:
        try:
            offsets = end_offsets(settings)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"end offsets: {exc}")
    return StackStatus(comps, state, tasks, lag, offsets, tuple(errors), findings)
