"""The enrichment's output in each lake format, on real files and a real pyiceberg catalog:
rows and malformed notifications land once, the cursor is what was committed, and a pass
written again (a re-run after a crash) adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.config import Settings
from pipelines.contract import message_topic
from pipelines.decode import RawMessage
from pipelines.decode.special import Quarantine
from pipelines.enrich.output import ENRICHED_ORDERS, IcebergOutput, ParquetOutput, output_for
from pipelines.enrich.thin import THIN_SCHEMA

pytestmark = pytest.mark.unit
T = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def enriched(settings: Settings, part: int, offsets: range) -> pa.Table:
    n = len(offsets)
    thin = {
        "event": ["OrderPaid"] * n,
        "order_id": [10 + o for o in offsets],
        "event_ts": [T] * n,
        "commit_ts": [T] * n,
        "lsn": list(offsets),
        "tx_id": list(offsets),
        "_partition": [part] * n,
        "_offset": list(offsets),
    }
    rows = pa.table(thin, schema=THIN_SCHEMA)
    return rows.append_column("status", pa.array(["paid"] * n)).append_column(
        "total_amount", pa.array([None] * n, pa.decimal128(12, 2))
    )


def bad(settings: Settings, part: int, offset: int) -> pa.Table:
    q = Quarantine(T)
    msg = RawMessage(message_topic(settings), part, offset, 0, b"k", b"{not json")
    q.add(msg, "malformed JSON")
    return q.table()


@pytest.fixture(params=["parquet", "iceberg"])
def settings(request, tmp_path: Path) -> Settings:  # noqa: ANN001
    return Settings(_env_file=None, home=tmp_path / "home", lake_format=request.param)


def test_a_pass_lands_once_and_moves_the_cursor(settings: Settings) -> None:
    out = output_for(settings)
    assert isinstance(out, IcebergOutput if settings.lake_format == "iceberg" else ParquetOutput)
    assert out.cursor() == {}
    start, end = {}, {0: 5, 1: 3}
    rows = pa.concat_tables([enriched(settings, 0, range(0, 4)), enriched(settings, 1, range(3))])
    out.write(start, end, rows, bad(settings, 0, 4))
    assert output_for(settings).cursor() == end
    out.write(start, end, rows, bad(settings, 0, 4))  # the same pass again: a re-run
    nxt = {0: 7, 1: 3}
    out.write(end, nxt, enriched(settings, 0, range(5, 7)), bad(settings, 0, 99).slice(0, 0))
    assert output_for(settings).cursor() == nxt
    landed, held = read_back(settings)
    assert sorted(landed) == [(0, o) for o in (0, 1, 2, 3, 5, 6)] + [(1, o) for o in range(3)]
    assert held == [(0, 4, "malformed JSON")]


def read_back(settings: Settings) -> tuple[list, list]:
    """((partition, offset) of every enriched row, (partition, offset, error) quarantined)."""
    if settings.lake_format == "iceberg":
        from pipelines.iceberg.catalog import load_table, open_catalog
        from pipelines.iceberg.names import ENRICHED, QUARANTINE

        catalog = open_catalog(settings)
        rows = load_table(catalog, ENRICHED, ENRICHED_ORDERS).scan().to_arrow()
        q = load_table(catalog, QUARANTINE, message_topic(settings)).scan().to_arrow()
        parts = rows.column("_kafka_partition").to_pylist()
    else:
        import pyarrow.parquet as pq

        from pipelines.bronze.layout import quarantine_dir
        from pipelines.enrich.output import enriched_dir

        rows = pa.concat_tables(
            [pq.read_table(p) for p in sorted(enriched_dir(settings).glob("*.parquet"))]
        )
        qdir = quarantine_dir(settings.lake_root, message_topic(settings))
        q = pa.concat_tables([pq.read_table(p) for p in sorted(qdir.glob("*.parquet"))])
        parts = rows.column("_partition").to_pylist()
    landed = list(zip(parts, rows.column("_offset").to_pylist(), strict=True))
    cols = ("partition", "offset", "error")
    held = list(zip(*(q.column(c).to_pylist() for c in cols), strict=True))
    return landed, held
