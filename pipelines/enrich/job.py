"""One enrichment pass: the notifications not enriched yet -> the enriched orders.

A pass reads ``<prefix>.message`` from the output's cursor (the next offset per partition) to
the end, enriches by the configured strategy, and hands the rows and the malformed
notifications (raw bytes, coordinates, reason) to the output of the lake's format
(``output``: Parquet files and a cursor file, or Iceberg commits that carry the offsets),
which makes a crash mid-pass neither lose nor enrich a notification twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.config import Settings
from pipelines.decode.special import Quarantine
from pipelines.enrich import source, thin
from pipelines.enrich.output import output_for
from pipelines.enrich.strategies import Enrichment, enrich


@dataclass(frozen=True)
class Pass:
    start: dict[int, int]
    end: dict[int, int]
    result: Enrichment | None  # None: nothing new
    quarantined: int
    where: str | None  # the file or table the rows went to


def cursor(settings: Settings) -> dict[int, int]:
    """The next notification offset to enrich, per partition of ``<prefix>.message``."""
    return output_for(settings).cursor()


def pending(settings: Settings) -> int:
    """Notifications in Kafka beyond the cursor."""
    done = cursor(settings)
    return sum(max(0, e - done.get(p, 0)) for p, e in source.end_offsets(settings).items())


def enrich_pass(settings: Settings, *, strategy: str | None = None) -> Pass:
    output = output_for(settings)
    start, end = output.cursor(), source.end_offsets(settings)
    if all(e <= start.get(p, 0) for p, e in end.items()):
        return Pass(start, end, None, 0, None)
    quarantine = Quarantine(datetime.now(UTC))
    chunks = (
        thin.parse(c, quarantine)
        for c in source.chunks(settings, start, end, max_records=settings.enrich_batch_size * 10)
    )
    result = enrich(settings, chunks, strategy=strategy)
    where = output.write(start, end, result.rows, quarantine.table())
    return Pass(start, end, result, len(quarantine), where)
