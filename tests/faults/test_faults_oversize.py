"""A row over the message limit, through the real Debezium connector (issue 8, item 4).

Observed behaviour (this test asserts it): a row whose change event is larger than
``Settings.max_message_bytes`` makes Kafka Connect's producer refuse the record
(``RecordTooLargeException``), so the connector task goes FAILED -- the pipeline stops loudly
instead of skipping the row. Nothing is lost: the replication slot does not advance past the
row, and no later change overtakes it. The operator's fix is to raise the limit for that
topic (topic ``max.message.bytes``) and the connector's producer (``max.request.size``) and
restart the task: Debezium re-reads the row from the slot, it lands in bronze intact and silver
matches PostgreSQL. The test restores the normal connector config afterwards.
"""

from __future__ import annotations

import time

import pytest
from faultkit import exactly_once, lake_settings, record_figures, silver_vs_pg, wait_streamed
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from pipelines.bronze.lander import land
from pipelines.bronze.topics import topic_for
from pipelines.naming import QualifiedName
from pipelines.silver import compact
from pipelines.stack import connect as connect_api
from pipelines.stack import register_connector, render, wait_connector_running
from pipelines.stack.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BIG = QualifiedName("faults", "oversize")


def _task_failure(settings) -> str | None:  # noqa: ANN001
    st = connect_api.connector_status(settings) or {}
    for t in st.get("tasks") or []:
        if t.get("state") == "FAILED":
            return t.get("trace") or "FAILED without trace"
    return None


def _wait_task_running(settings, timeout: float = 120) -> None:  # noqa: ANN001
    """Until connector and task report RUNNING on 3 polls in a row (right after a restart the
    status may still show the old FAILED task, so FAILED alone is not final here)."""
    deadline, ok = time.monotonic() + timeout, 0
    while ok < 3:
        st = connect_api.connector_status(settings) or {}
        tasks = st.get("tasks") or []
        running = st.get("connector", {}).get("state") == "RUNNING" and tasks
        ok = ok + 1 if running and all(t.get("state") == "RUNNING" for t in tasks) else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"connector not RUNNING after {timeout}s: {str(st)[:1500]}")
        time.sleep(1)


def test_oversize_row_stops_the_connector_and_lands_after_raising_the_limit(
    stack,  # noqa: ANN001
    tmp_path,  # noqa: ANN001
) -> None:
    t0 = time.monotonic()
    stack.capture(
        "CREATE SCHEMA IF NOT EXISTS faults; DROP TABLE IF EXISTS faults.oversize;"
        "CREATE TABLE faults.oversize (id int PRIMARY KEY, body text);",
        str(BIG),
    )
    settings = lake_settings(stack, tmp_path / "lake", [BIG])
    session = stack.settings
    limit = settings.max_message_bytes
    raised = 3 * limit
    row_chars = limit + 1024 * 1024
    with stack.pg() as conn:
        conn.execute("INSERT INTO faults.oversize VALUES (1, 'small before')")
        conn.execute(
            "INSERT INTO faults.oversize VALUES (2, repeat(md5('o'), %s))", (row_chars // 32,)
        )
        conn.execute("INSERT INTO faults.oversize VALUES (3, 'small after')")
    trace = None
    try:
        wait_until(
            lambda: _task_failure(session) is not None,
            timeout=90,
            what="connector task to fail on the oversize record",
            log=None,
        )
        trace = _task_failure(session)
        assert "RecordTooLargeException" in trace or "too large" in trace.lower(), trace[:2000]

        topic = topic_for(settings, BIG)
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(raised)}
                    )
                ]
            )
        finally:
            admin.close()
        cfg = render(session, {"CHANGELAKE_MAX_MESSAGE_BYTES": str(raised)})
        connect_api.put_config(session, cfg)
        time.sleep(3)
        connect_api.restart(session)
        _wait_task_running(session)
        with stack.pg() as conn:
            wait_streamed(conn, session.slot_name)  # the oversize row went through
    finally:
        register_connector(session)  # back to the normal config for everyone after us
        time.sleep(3)
        connect_api.restart(session)
        _wait_task_running(session)
        wait_connector_running(session, timeout=120)

    result = land(settings)
    once = exactly_once(settings, [topic])
    assert not once.missing and not once.duplicated
    compact(settings.lake_root, BIG)
    with stack.pg() as conn:
        diff = silver_vs_pg(conn, settings, BIG, ["id"])
    assert diff.pg_rows == 3 and not diff.only_pg and not diff.only_silver, diff
    record_figures(
        "oversize_row",
        {
            "limit_bytes": limit,
            "row_bytes": row_chars,
            "observed": "Connect producer refused the record; connector task FAILED "
            "(no skip, slot held the row)",
            "trace_cause": next(
                (ln.strip()[:300] for ln in (trace or "").splitlines() if "TooLarge" in ln), None
            ),
            "recovery": f"topic max.message.bytes and producer max.request.size -> {raised}, "
            "task restart: row landed",
            "events_landed": result.events,
            "rows_lost": len(diff.only_pg),
            "seconds": round(time.monotonic() - t0, 1),
        },
    )
