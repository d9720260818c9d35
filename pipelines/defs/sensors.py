"""Event-driven landing: a sensor compares Kafka end offsets with the lake's landed offsets.

It launches the bronze multi-asset (only for the tables whose topics hold unlanded events),
never on a timer alone. Silver and marts then follow by declarative automation (``eager``)
evaluated by the automation-condition sensor defined here.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence

import dagster as dg

from pipelines.bronze import landed_offsets
from pipelines.bronze.topics import topic_for
from pipelines.config import Settings
from pipelines.defs.keys import bronze_key
from pipelines.defs.resources import ChangelakeResource, KafkaResource
from pipelines.naming import QualifiedName
from pipelines.service.state import running_pid

LANDING_TAG = "changelake/landing"
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def pending_events(
    settings: Settings,
    end: Mapping[tuple[str, int], int],
    landed: Mapping[tuple[str, int], int],
    tables: Sequence[QualifiedName],
) -> dict[QualifiedName, int]:
    """Unlanded events per table: Kafka end offset minus (highest landed offset + 1)."""
    out: dict[QualifiedName, int] = {}
    for table in tables:
        topic = topic_for(settings, table)
        n = sum(
            max(off - (landed.get((t, p), -1) + 1), 0) for (t, p), off in end.items() if t == topic
        )
        if n:
            out[table] = n
    return out


def _run_key(end: Mapping[tuple[str, int], int], topics: set[str]) -> str:
    mine = sorted((t, p, o) for (t, p), o in end.items() if t in topics)
    return "land-" + hashlib.sha1(json.dumps(mine).encode()).hexdigest()[:16]


def build_kafka_sensor(tables: Sequence[QualifiedName], job: object) -> dg.SensorDefinition:
    """The sensor launching ``job`` (the bronze landing job) when new events exist."""

    @dg.sensor(
        name="kafka_new_events",
        job=job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lands bronze when Kafka holds events beyond the lake's landed offsets.",
    )
    def kafka_new_events(
        context: dg.SensorEvaluationContext, changelake: ChangelakeResource, kafka: KafkaResource
    ) -> dg.SensorResult | dg.SkipReason:
        settings = changelake.settings()
        if (pid := running_pid(settings.lake_root)) is not None:
            return dg.SkipReason(
                f"changelake run (pid {pid}) lands this lake; its work shows as runless events"
            )
        active = context.instance.get_runs(
            filters=dg.RunsFilter(tags={LANDING_TAG: "true"}, statuses=_ACTIVE), limit=1
        )
        if active:
            return dg.SkipReason(f"landing run {active[0].run_id} still in progress")
        try:
            end = kafka.end_offsets(settings)
        except Exception as exc:  # noqa: BLE001 - Kafka down is a skip, not a sensor crash
            return dg.SkipReason(f"Kafka unreachable: {exc}")
        pending = pending_events(settings, end, landed_offsets(settings.lake_root), tables)
        if not pending:
            return dg.SkipReason("no unlanded events")
        topics = {topic_for(settings, t) for t in pending}
        context.log.info("unlanded events: %s", {str(t): n for t, n in pending.items()})
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=_run_key(end, topics),
                    asset_selection=[bronze_key(t) for t in pending],
                    tags={LANDING_TAG: "true"},
                )
            ]
        )

    return kafka_new_events


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates silver/marts ``eager()`` conditions (running by default)."""
    return dg.AutomationConditionSensorDefinition(
        "changelake_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
