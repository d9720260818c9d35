"""One enrichment pass: the notifications not enriched yet -> ``<lake>/enriched/orders``.

The lake keeps a cursor (``_cursor.json``, next offset per partition of ``<prefix>.message``).
A pass reads ``[cursor, end)``, enriches by the configured strategy, writes the rows to
``from-<start offsets>.parquet`` (a re-run from the same cursor overwrites the same file, so a
crash between the file and the cursor cannot enrich a notification twice), puts malformed
notifications in quarantine (raw bytes, coordinates, reason), then advances the cursor.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.bronze.layout import quarantine_dir
from pipelines.config import Settings
from pipelines.contract import message_topic
from pipelines.decode.special import Quarantine
from pipelines.enrich import source, thin
from pipelines.enrich.strategies import Enrichment, enrich


@dataclass(frozen=True)
class Pass:
    start: dict[int, int]
    end: dict[int, int]
    result: Enrichment | None  # None: nothing new
    quarantined: int
    path: Path | None


def enriched_dir(settings: Settings) -> Path:
    return settings.lake_root / "enriched" / "orders"


def cursor(settings: Settings) -> dict[int, int]:
    try:
        doc = json.loads((enriched_dir(settings) / "_cursor.json").read_text())
    except FileNotFoundError:
        return {}
    return {int(p): int(o) for p, o in doc.items()}


def _write_atomic(path: Path, write) -> None:  # noqa: ANN001
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def pending(settings: Settings) -> int:
    """Notifications in Kafka beyond the cursor."""
    done = cursor(settings)
    return sum(max(0, e - done.get(p, 0)) for p, e in source.end_offsets(settings).items())


def enrich_pass(settings: Settings, *, strategy: str | None = None) -> Pass:
    start, end = cursor(settings), source.end_offsets(settings)
    if all(e <= start.get(p, 0) for p, e in end.items()):
        return Pass(start, end, None, 0, None)
    quarantine = Quarantine(datetime.now(UTC))
    chunks = (
        thin.parse(c, quarantine)
        for c in source.chunks(settings, start, end, max_records=settings.enrich_batch_size * 10)
    )
    result = enrich(settings, chunks, strategy=strategy)
    out = enriched_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    name = "from-" + "_".join(f"{p}.{start.get(p, 0)}" for p in sorted(end)) + ".parquet"
    _write_atomic(out / name, lambda tmp: pq.write_table(result.rows, tmp))
    if len(quarantine):
        qdir = quarantine_dir(settings.lake_root, message_topic(settings))
        qdir.mkdir(parents=True, exist_ok=True)
        _write_atomic(qdir / name, lambda tmp: pq.write_table(quarantine.table(), tmp))
    _write_atomic(
        out / "_cursor.json",
        lambda tmp: tmp.write_text(json.dumps({str(p): o for p, o in end.items()})),
    )
    return Pass(start, end, result, len(quarantine), out / name)
