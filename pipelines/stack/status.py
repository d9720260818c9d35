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
    pid: int | None  # None for an external component (not ours to count)
    port: int | str  # an external component: its address
    up: bool
    rss_bytes: int = 0
    error: str | None = None
    external: bool = False


@dataclass(frozen=True)
class StackStatus:
    components: tuple[ComponentStatus, ...]
    connector_state: str | None = None
    task_states: tuple[str, ...] = ()
    slot_lag_bytes: int | None = None
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    capture_findings: tuple[str, ...] = ()  # captured changes going missing (late_tables)
    retained_wal: dict[str, int] = field(default_factory=dict)  # per slot of the server
    warnings: tuple[str, ...] = ()

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


def _probe_external(name: str, where: str, check) -> ComponentStatus:  # noqa: ANN001
    try:
        return ComponentStatus(name, None, where, bool(check()), external=True)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return ComponentStatus(name, None, where, False, 0, f"{type(exc).__name__}: {exc}", True)


def _component(settings: Settings, layout: Layout, name: str) -> ComponentStatus:
    module, port, where = {
        "postgres": (postgres, settings.pg_port, f"{settings.pg_host}:{settings.pg_port}"),
        "kafka": (kafka, settings.kafka_port, settings.bootstrap_servers),
        "connect": (connect, settings.connect_port, settings.connect_url),
    }[name]
    if settings.managed(name):
        return _probe(name, module.pid(layout), port, lambda: module.healthy(settings))
    return _probe_external(name, where, lambda: module.healthy(settings))


def slot_warnings(settings: Settings, retained: dict[str, int]) -> tuple[str, ...]:
    """The warning ``status`` prints (and the Dagster check's reason) past the limit."""
    held = retained.get(settings.slot_name)
    if held is None or held <= settings.max_slot_lag_bytes:
        return ()
    return (
        f"slot {settings.slot_name} retains {held} bytes of WAL, more than "
        f"CHANGELAKE_MAX_SLOT_LAG_BYTES={settings.max_slot_lag_bytes}: is the connector running? "
        "(an abandoned slot keeps WAL until the disk fills; `changelake down --purge` drops it)",
    )


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """End offset per (topic, partition) for every non-internal topic."""
    return kafka.end_offsets(settings)


def status(settings: Settings) -> StackStatus:
    layout = Layout.of(settings)
    comps = tuple(_component(settings, layout, name) for name in ("postgres", "kafka", "connect"))
    up = {c.name: c.up for c in comps}
    errors: list[str] = []
    state, tasks, lag, offsets, findings, retained = None, (), None, {}, (), {}
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
            retained = postgres.retained_wal(settings)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"postgres (slot lag, capture findings, retained WAL): {exc}")
    if up["kafka"]:
        try:
            offsets = end_offsets(settings)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"end offsets: {exc}")
    return StackStatus(
        comps,
        state,
        tasks,
        lag,
        offsets,
        tuple(errors),
        findings,
        retained,
        slot_warnings(settings, retained),
    )
