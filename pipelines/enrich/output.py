"""Where an enrichment pass puts its rows, exactly once, in the lake's format.

- **Parquet lake**: ``<lake>/enriched/orders/from-<start offsets>.parquet`` and a cursor file
  ``_cursor.json`` (the next offset per partition of ``<prefix>.message``). The rows file is
  written before the cursor, under a name fixed by the pass's start, so a crash between the two
  makes the re-run from the same cursor overwrite the same file; malformed notifications go
  to the topic's quarantine folder the same way.
- **Iceberg** (``CHANGELAKE_LAKE_FORMAT=iceberg``): the table ``enriched.shop__orders``, one
  commit per partition of the pass whose snapshot summary records the message topic's
  offsets (``iceberg.commit``), so the table is its own cursor. Malformed notifications are
  committed to ``quarantine.<topic>`` first, with their offsets; a crash between the two
  commits re-runs the pass from the enriched table's position and the quarantine commit
  skips what it already has (the lander's order, ``iceberg.landing``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.bronze.layout import BatchId, quarantine_dir
from pipelines.config import Settings
from pipelines.contract import message_topic
from pipelines.naming import QualifiedName

ENRICHED_ORDERS = QualifiedName("shop", "orders")  # the table the thin events are about


def enriched_dir(settings: Settings) -> Path:
    return settings.lake_root / "enriched" / "orders"


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ParquetOutput:
    """The Parquet lake's enriched files and cursor file (see the module)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def cursor(self) -> dict[int, int]:
        try:
            doc = json.loads((enriched_dir(self.settings) / "_cursor.json").read_text())
        except FileNotFoundError:
            return {}
        return {int(p): int(o) for p, o in doc.items()}

    def write(
        self, start: dict[int, int], end: dict[int, int], rows: pa.Table, quarantine: pa.Table
    ) -> str:
        out = enriched_dir(self.settings)
        out.mkdir(parents=True, exist_ok=True)
        name = "from-" + "_".join(f"{p}.{start.get(p, 0)}" for p in sorted(end)) + ".parquet"
        _write_atomic(out / name, lambda tmp: pq.write_table(rows, tmp))
        if quarantine.num_rows:
            qdir = quarantine_dir(self.settings.lake_root, message_topic(self.settings))
            qdir.mkdir(parents=True, exist_ok=True)
            _write_atomic(qdir / name, lambda tmp: pq.write_table(quarantine, tmp))
        cursor = json.dumps({str(p): o for p, o in end.items()})
        _write_atomic(out / "_cursor.json", lambda tmp: tmp.write_text(cursor))
        return str(out / name)


class IcebergOutput:
    """``enriched.shop__orders`` and ``quarantine.<topic>`` in the lake's Iceberg catalog."""

    def __init__(self, settings: Settings) -> None:
        from pipelines.iceberg.catalog import open_catalog

        self.settings, self.topic = settings, message_topic(settings)
        self.catalog = open_catalog(settings)

    def _table(self, layer: str, name: QualifiedName | str, schema: pa.Schema | None):  # noqa: ANN202
        from pipelines.iceberg.catalog import ensure_table
        from pipelines.iceberg.evolve import evolve
        from pipelines.iceberg.sources import maybe_table

        if schema is None:
            return maybe_table(self.catalog, layer, name)
        table = ensure_table(self.catalog, layer, name, schema)
        evolve(table, schema)
        return table

    def cursor(self) -> dict[int, int]:
        from pipelines.iceberg import offsets as off
        from pipelines.iceberg.names import ENRICHED

        table = self._table(ENRICHED, ENRICHED_ORDERS, None)
        return {} if table is None else off.resume_positions(table, self.topic)

    def write(
        self, start: dict[int, int], end: dict[int, int], rows: pa.Table, quarantine: pa.Table
    ) -> str:
        from pipelines.iceberg.commit import BRONZE_COORDINATES, QUARANTINE_COORDINATES
        from pipelines.iceberg.conform import to_iceberg
        from pipelines.iceberg.landing import commit_range
        from pipelines.iceberg.names import ENRICHED, QUARANTINE

        micros = self.settings.iceberg_time_as_micros
        topic_col = pa.array([self.topic] * rows.num_rows, pa.string())
        rows = to_iceberg(rows.append_column("_topic", topic_col), time_as_micros=micros)
        held = to_iceberg(quarantine, time_as_micros=micros) if quarantine.num_rows else None
        enriched = self._table(ENRICHED, ENRICHED_ORDERS, rows.schema)
        bad = self._table(QUARANTINE, self.topic, held.schema) if held is not None else None
        for p, stop in sorted(end.items()):
            first = start.get(p, 0)
            if stop <= first:
                continue
            batch = BatchId(self.topic, p, first, stop - 1)
            if bad is not None:
                mine = held.filter(pc.equal(held[QUARANTINE_COORDINATES[1]], p))
                commit_range(bad, batch, mine, QUARANTINE_COORDINATES)
            mine = rows.filter(pc.equal(rows[BRONZE_COORDINATES[1]], p))
            commit_range(enriched, batch, mine, BRONZE_COORDINATES)
        return f"{ENRICHED}.{'.'.join(enriched.name()[1:])} in {self.settings.iceberg_warehouse_location}"


def output_for(settings: Settings) -> ParquetOutput | IcebergOutput:
    """The enrichment's output in the lake's format."""
    if settings.lake_format == "iceberg":
        return IcebergOutput(settings)
    return ParquetOutput(settings)
