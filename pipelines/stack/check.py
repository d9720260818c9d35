"""``changelake check``: a preflight of PostgreSQL, Kafka and Kafka Connect before anything is
created, one finding per line with the SQL or config that fixes it.

A finding is data (name, severity, message, fix), so a check is any function returning
findings: the PostgreSQL ones live in ``check_postgres`` (a list other checks may be appended
to), the Kafka and Connect ones in ``check_kafka``. ``up`` runs the same checks and refuses to
go on past a blocking finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipelines.config import Settings
from pipelines.stack import check_kafka, check_postgres
from pipelines.stack.findings import Finding
from pipelines.stack.procs import StackError

PARTS = ("postgres", "kafka", "connect")


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "blocking"]


def run(
    settings: Settings, parts: Sequence[str] = PARTS, *, tables_must_exist: bool = True
) -> list[Finding]:
    """Every finding for ``parts`` (a subset of ``PARTS``), in that order.

    ``tables_must_exist``: a captured table that does not exist is blocking (the preflight of
    a database a user points changelake at); ``up`` passes False, because the demo and tests
    create captured tables after the stack is up, and Debezium adds them when they appear.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise StackError(f"unknown check part(s) {sorted(unknown)}; choose from {PARTS}")
    findings: list[Finding] = []
    if "postgres" in parts:
        findings += check_postgres.run(settings, tables_must_exist=tables_must_exist)
    cluster_id = None
    if "kafka" in parts:
        kafka_findings, cluster_id = check_kafka.kafka(settings)
        findings += kafka_findings
    if "connect" in parts:
        # the connector's own validation repeats PostgreSQL problems already reported above
        validate = "postgres" in parts and not blocking(findings)
        findings += check_kafka.connect(settings, kafka_cluster_id=cluster_id, validate=validate)
    return findings


def require(settings: Settings, parts: Sequence[str], *, tables_must_exist: bool) -> list[Finding]:
    """``run`` and raise one StackError naming every blocking finding (``up`` calls this)."""
    findings = run(settings, parts, tables_must_exist=tables_must_exist)
    bad = blocking(findings)
    if bad:
        raise StackError(
            "preflight (changelake check) found blocking problems:\n"
            + "\n".join(f.line() for f in bad)
        )
    return findings
