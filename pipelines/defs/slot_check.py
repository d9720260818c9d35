"""One asset check per bronze asset, evaluated once: the replication slot feeding bronze
retains no more WAL than ``CHANGELAKE_MAX_SLOT_LAG_BYTES`` (an abandoned or stuck slot keeps
WAL on the database's disk until it fills). The limit and its message live in
``pipelines.stack.status``; this only reports them.
"""

from collections.abc import Iterator, Sequence

import dagster as dg

from pipelines.defs.keys import bronze_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.naming import QualifiedName

CHECK_NAME = "slot_retained_wal"


def build_slot_check(tables: Sequence[QualifiedName]) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=bronze_key(t),
            description="The replication slot retains at most CHANGELAKE_MAX_SLOT_LAG_BYTES of WAL.",
        )
        for t in tables
    ]

    @dg.multi_asset_check(specs=specs, name="replication_slot_retained_wal", can_subset=True)
    def _check(
        context: dg.AssetCheckExecutionContext, changelake: ChangelakeResource
    ) -> Iterator[dg.AssetCheckResult]:
        from pipelines.stack import postgres  # late: talks to PostgreSQL
        from pipelines.stack.status import slot_warnings

        settings = changelake.settings()
        retained = postgres.retained_wal(settings)
        held = retained.get(settings.slot_name)
        warnings = slot_warnings(settings, retained)
        selected = context.selected_asset_check_keys  # a run may pick one table's check
        for spec in specs:
            if spec.key not in selected:
                continue
            yield dg.AssetCheckResult(
                asset_key=spec.asset_key,
                check_name=CHECK_NAME,
                passed=held is not None and not warnings,
                metadata={
                    "slot": settings.slot_name,
                    "retained_wal_bytes": -1 if held is None else held,
                    "max_slot_lag_bytes": settings.max_slot_lag_bytes,
                    "reason": warnings[0] if warnings else ("no slot" if held is None else "ok"),
                },
            )

    return _check
