"""Asset checks: silver reconciles with PostgreSQL, silver is fresh, bronze quarantine is empty.

Each check is one aggregate query (or a directory listing) per table; the logic lives in
``reconcile`` and the stage packages, the check only compares and explains. dbt tests become
checks on the marts through dagster-dbt itself.
"""

import time
from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from pipelines.bronze.topics import topic_for
from pipelines.defs.keys import bronze_key, silver_key
from pipelines.defs.reconcile import reconcile
from pipelines.defs.resources import ChangelakeResource, PostgresReadOnlyResource
from pipelines.defs.slot_check import build_slot_check
from pipelines.lakeformat import quarantined, silver_status
from pipelines.naming import QualifiedName
from pipelines.stack.late_tables import unpublished

FRESHNESS_WARN_SECONDS = 15 * 60


def _reconcile_check(table: QualifiedName) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=silver_key(table),
        name="matches_postgres",
        description=(
            "Row count and an order-independent checksum of the comparable columns equal "
            "PostgreSQL's at one snapshot. Meaningful at quiescence (no writes in flight)."
        ),
    )
    def _check(
        changelake: ChangelakeResource, postgres: PostgresReadOnlyResource
    ) -> dg.AssetCheckResult:
        settings = changelake.settings()
        with postgres.connect(settings) as conn:
            lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
            done = reconcile(settings, table, conn)
        plan, pg, lake = done.plan, done.postgres, done.silver
        published = table not in unpublished(settings)
        return dg.AssetCheckResult(
            passed=pg == lake and published,
            description=None
            if published
            else f"{table} is NOT in publication {settings.publication_name}: "
            "its changes are not captured (`changelake up` adds it)",
            metadata={
                "in_publication": published,
                "postgres_rows": pg.rows,
                "silver_rows": lake.rows,
                "postgres_checksum": str(pg.checksum),
                "silver_checksum": str(lake.checksum),
                "postgres_wal_lsn": lsn,
                "compared_columns": dg.MetadataValue.json(plan.compared),
                "skipped_columns": dg.MetadataValue.json(plan.skipped),
            },
        )

    return _check


def _freshness_check(table: QualifiedName) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=silver_key(table),
        name="commit_to_silver_lag",
        description=(
            "Seconds from the newest applied change's PostgreSQL commit to the publication of "
            "the silver snapshot holding it (a snapshot is only written when new events "
            f"exist); warns above {FRESHNESS_WARN_SECONDS}s."
        ),
    )
    def _check(changelake: ChangelakeResource) -> dg.AssetCheckResult:
        snap = silver_status(changelake.settings(), table)
        if snap is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "no silver snapshot"})
        created = datetime.fromisoformat(snap.created_at)
        if snap.watermark_ts is None:  # nothing ever committed: nothing can be late
            return dg.AssetCheckResult(passed=True, metadata={"rows": snap.rows})
        newest = datetime.fromisoformat(snap.watermark_ts)
        lag = max((created - newest).total_seconds(), 0.0)
        return dg.AssetCheckResult(
            passed=lag <= FRESHNESS_WARN_SECONDS,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "commit_to_silver_lag_s": round(lag, 3),
                "newest_commit": newest.isoformat(),
                "snapshot_published": created.isoformat(),
                "snapshot_id": snap.snapshot_id,
                "snapshot_age_s": round(time.time() - created.timestamp(), 1),
            },
        )

    return _check


def _quarantine_check(table: QualifiedName) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=bronze_key(table),
        name="quarantine_empty",
        description="No message of this table's topic was quarantined as undecodable.",
    )
    def _check(changelake: ChangelakeResource) -> dg.AssetCheckResult:
        settings = changelake.settings()
        found, where, examples = quarantined(settings, topic_for(settings, table))
        return dg.AssetCheckResult(
            passed=not found,
            metadata={
                "quarantined": found,  # files of the Parquet lake, messages in Iceberg
                "quarantine": dg.MetadataValue.text(where),
                "examples": dg.MetadataValue.json(examples),
            },
        )

    return _check


def build_checks(tables: Sequence[QualifiedName]) -> list[dg.AssetChecksDefinition]:
    """All lake checks for ``tables``."""
    out: list[dg.AssetChecksDefinition] = []
    for t in tables:
        out += [_reconcile_check(t), _freshness_check(t), _quarantine_check(t)]
    return [*out, build_slot_check(tables)] if tables else out
