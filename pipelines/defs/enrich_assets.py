"""Event notification in Dagster: a sensor on the thin-event topic, an enrichment asset.

The sensor treats notifications as triggers: when ``<prefix>.message`` holds events beyond the
lake's enrichment cursor it requests one run of ``enriched/orders``; the asset calls
``pipelines.enrich.job.enrich_pass`` (strategy from ``CHANGELAKE_ENRICH_STRATEGY`` unless the
run config names one). The asset follows bronze ``shop.orders`` when that is captured (the
``lake`` strategy reads it).
"""

from collections.abc import Sequence

import dagster as dg

from pipelines.defs.keys import bronze_key
from pipelines.defs.resources import ChangelakeResource
from pipelines.enrich.job import enrich_pass, pending
from pipelines.enrich.lake import ORDERS
from pipelines.naming import QualifiedName

ENRICHED_KEY = dg.AssetKey(["enriched", "orders"])
ENRICH_TAG = "changelake/enrich"


class EnrichConfig(dg.Config):
    strategy: str = ""  # n_plus_one, batched or lake; empty: CHANGELAKE_ENRICH_STRATEGY


def build_enrich_asset(tables: Sequence[QualifiedName]) -> dg.AssetsDefinition:
    @dg.asset(
        key=ENRICHED_KEY,
        group_name="enrichment",
        deps=[bronze_key(ORDERS)] if ORDERS in tables else [],
        description="Thin order notifications turned into full order rows.",
    )
    def enriched_orders(
        context: dg.AssetExecutionContext, config: EnrichConfig, changelake: ChangelakeResource
    ) -> dg.MaterializeResult:
        done = enrich_pass(changelake.settings(), strategy=config.strategy or None)
        meta: dict = {"start": str(done.start), "end": str(done.end)}
        if done.result is not None:
            r = done.result
            meta |= {
                "strategy": r.strategy,
                "events": r.rows.num_rows,
                "api_calls": r.calls,
                "rejected_429": r.rejected_429,
                "unresolved": r.unresolved,
                "quarantined": done.quarantined,
                "seconds": round(r.seconds, 3),
                "written_to": str(done.where),
            }
        context.log.info("enrichment: %s", meta)
        return dg.MaterializeResult(metadata=meta)

    return enriched_orders


def build_enrich_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="order_notifications",
        asset_selection=[ENRICHED_KEY],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Enriches order notifications when the thin-event topic holds new ones.",
    )
    def order_notifications(
        context: dg.SensorEvaluationContext, changelake: ChangelakeResource
    ) -> dg.SensorResult | dg.SkipReason:
        active = context.instance.get_runs(
            filters=dg.RunsFilter(
                tags={ENRICH_TAG: "true"},
                statuses=[
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                ],
            ),
            limit=1,
        )
        if active:
            return dg.SkipReason(f"enrichment run {active[0].run_id} still in progress")
        try:
            n = pending(changelake.settings())
        except Exception as exc:  # noqa: BLE001 - Kafka down is a skip, not a sensor crash
            return dg.SkipReason(f"Kafka unreachable: {exc}")
        if not n:
            return dg.SkipReason("no new notifications")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(asset_selection=[ENRICHED_KEY], tags={ENRICH_TAG: "true"})]
        )

    return order_notifications
