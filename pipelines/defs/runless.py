"""Record a land or compact that ran outside Dagster in the changelake Dagster instance.

``changelake land`` / ``compact`` (and any other caller of the stage functions) report what
they did as runless ``AssetMaterialization`` events with the same metadata the assets attach
(``stagemeta``), so the UI's bronze and silver assets never look older than the lake. The
instance is the one ``changelake ui`` and the demo use (``<CHANGELAKE_HOME>/dagster``).
Recording is best effort: a failure logs one warning line and never fails the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext

import dagster as dg

from pipelines.bronze.lander import LandingResult
from pipelines.config import Settings
from pipelines.defs.keys import bronze_key, silver_key
from pipelines.defs.stagemeta import bronze_metadata, silver_metadata
from pipelines.instance import prepare_dagster_home
from pipelines.naming import QualifiedName

log = logging.getLogger(__name__)

Events = Callable[[], list[dg.AssetMaterialization]]


def report_landing(
    settings: Settings,
    result: LandingResult,
    tables: Sequence[QualifiedName] | None = None,
    *,
    instance: dg.DagsterInstance | None = None,
    source: str = "changelake land",
) -> bool:
    """One bronze materialisation per landed table (default: every captured table)."""

    def events() -> list[dg.AssetMaterialization]:
        return [
            dg.AssetMaterialization(
                asset_key=bronze_key(t),
                description=f"landed by {source}",
                metadata=bronze_metadata(settings, t, result),
            )
            for t in (tables or settings.captured)
        ]

    return _report(settings, events, instance)


def report_compaction(
    settings: Settings,
    results: Iterable[object],
    *,
    instance: dg.DagsterInstance | None = None,
    source: str = "changelake compact",
) -> bool:
    """One silver materialisation per compaction result (``result.table`` names the table)."""

    def events() -> list[dg.AssetMaterialization]:
        out = []
        for r in results:
            table = QualifiedName.parse(r.table)  # type: ignore[attr-defined]
            out.append(
                dg.AssetMaterialization(
                    asset_key=silver_key(table),
                    description=f"compacted by {source}",
                    metadata=silver_metadata(settings, table, r),
                )
            )
        return out

    return _report(settings, events, instance)


def changelake_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance under ``<CHANGELAKE_HOME>/dagster`` (created when missing)."""
    return dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))


def _report(settings: Settings, events: Events, instance: dg.DagsterInstance | None) -> bool:
    """Build and record ``events``; True when recorded, else one warning line and False."""
    try:
        with nullcontext(instance) if instance else changelake_instance(settings) as target:
            for event in events():
                target.report_runless_asset_event(event)
        return True
    except Exception as exc:  # recording must never fail the land/compact that succeeded
        first = (str(exc).splitlines() or [""])[0]
        log.warning(
            "not recorded in the Dagster instance (UI may look stale): %s: %s",
            type(exc).__name__,
            first,
        )
        return False
