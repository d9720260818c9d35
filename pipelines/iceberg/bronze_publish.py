"""Publish bronze (and quarantine) to Iceberg: every complete batch, exactly once, in order.

Bronze batches are already exactly-once in the lake (``bronze.layout``: a batch of one
topic-partition counts only when all its files exist). Publishing appends their rows to the
Iceberg table ``bronze.<table>`` through ``commit.commit_batch``, so each Iceberg snapshot
records the Kafka positions its rows reach and a publish that dies anywhere, or runs twice,
or races another publisher, leaves every event in the Iceberg table once:

- a batch is published only if every batch before it on its topic-partition is complete
  (the lander writes a partition's batches in order, so an incomplete one is in flight, or
  about to be deleted and landed again by the lander's recovery);
- a batch's range starts where the table's committed position for the partition is: batches
  in between wrote no rows to this table (all tombstones, or all quarantined), so there is
  nothing to lose there;
- consecutive batches are combined into one Iceberg append of up to ``max_rows`` rows (one
  snapshot, one data file per commit date, instead of one per small batch); the small files
  frequent publishes still leave are rewritten into few (``rewrite``).

Quarantined messages of a topic (raw bytes, coordinates, reason) become ``quarantine.<topic>``
the same way: they are files of the same batches. Rows go through ``conform`` (Iceberg's
types, ``_kafka_partition``) and the table's schema
follows them (``evolve``). The primary key is kept as the table property ``changelake.key``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError

from pipelines.bronze.layout import DATE_PARTITION, BatchId, LakeListing, table_dir
from pipelines.bronze.layout import QUARANTINE as QUARANTINE_DIR
from pipelines.bronze.reader import BronzeTable
from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, load_table
from pipelines.iceberg.commit import (
    BRONZE_COORDINATES,
    QUARANTINE_COORDINATES,
    Batch,
    CommitState,
    commit_batch,
)
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.evolve import evolve
from pipelines.iceberg.expiry import expire_appended
from pipelines.iceberg.names import BRONZE, QUARANTINE
from pipelines.iceberg.offsets import OffsetRange, TopicPartition
from pipelines.iceberg.published import Published, added_bytes, crash_at_state, keep_key
from pipelines.iceberg.rewrite import DEFAULT_SMALL_FILES, SmallFiles, rewrite_small_files
from pipelines.naming import from_path_segment

MAX_ROWS = 500_000  # rows per Iceberg append (memory: one chunk is held at a time)


@dataclass(frozen=True)
class Source:
    """One folder of the Parquet lake that becomes one Iceberg table."""

    layer: str  # bronze or quarantine
    name: BronzeTable | str  # the bronze table, or the quarantined topic
    root: Path  # its files: root/_commit_date=*/ (bronze) or root/ (quarantine)
    coordinates: tuple[str, str, str] = BRONZE_COORDINATES


def bronze_source(lake: Path, table: BronzeTable) -> Source:
    return Source(BRONZE, table, table_dir(lake, table))


def quarantine_sources(lake: Path) -> list[Source]:
    """One per topic that has quarantined messages."""
    root = lake / QUARANTINE_DIR
    if not root.is_dir():
        return []
    return [
        Source(QUARANTINE, from_path_segment(d.name), d, QUARANTINE_COORDINATES)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    ]


def batches_of(source: Source, listing: LakeListing) -> dict[BatchId, list[Path]]:
    out: dict[BatchId, list[Path]] = defaultdict(list)
    for batch, files in listing.complete.items():
        for f in files:
            if f.path.suffix == ".parquet" and source.root in (f.path.parent, f.path.parent.parent):
                out[batch].append(f.path)
    return {b: sorted(ps) for b, ps in out.items()}


def _in_flight(listing: LakeListing) -> dict[TopicPartition, int]:
    """Per topic-partition, the first offset of the oldest batch that is not complete."""
    out: dict[TopicPartition, int] = {}
    for b in listing.incomplete:
        tp = TopicPartition(b.topic, b.partition)
        out[tp] = min(out.get(tp, b.first), b.first)
    return out


def _read(path: Path) -> pa.Table:
    """One lake file; a bronze file with its ``_commit_date`` (a directory name) as a column."""
    rows = pq.ParquetFile(path).read()
    folder = path.parent.name
    if not folder.startswith(f"{DATE_PARTITION}="):
        return rows  # quarantine: no date folders
    day = date.fromisoformat(folder.removeprefix(f"{DATE_PARTITION}="))
    return rows.append_column(DATE_PARTITION, pa.array([day] * rows.num_rows, pa.date32()))


def _key(paths: list[Path]) -> list[str] | None:
    raw = (pq.read_schema(paths[-1]).metadata or {}).get(b"changelake.key")
    return json.loads(raw) if raw is not None else None


def pending(
    batches: dict[BatchId, list[Path]],
    committed: off.Offsets,
    in_flight: dict[TopicPartition, int],
) -> list[tuple[TopicPartition, OffsetRange, list[Path]]]:
    """The batches to publish, oldest first per partition, each with the range it covers."""
    out = []
    position = dict(committed)
    for b in sorted(batches):
        tp = TopicPartition(b.topic, b.partition)
        if b.last + 1 <= position.get(tp, -1):
            continue  # published before
        if b.last >= in_flight.get(tp, b.last + 1):
            continue  # an earlier batch of the partition is not complete yet
        start = position.get(tp, b.first)
        out.append((tp, OffsetRange(min(start, b.first), b.last + 1), batches[b]))
        position[tp] = b.last + 1
    return out


def publish_batches(
    catalog: SqlCatalog,
    source: Source,
    listing: LakeListing,
    *,
    max_rows: int = MAX_ROWS,
    time_as_micros: bool = False,
    small_files: SmallFiles | None = DEFAULT_SMALL_FILES,
) -> Published:
    """Append ``source``'s unpublished complete batches to its Iceberg table (see the module)."""
    layer, table = source.layer, source.name
    report = Published(layer, str(table))
    batches = batches_of(source, listing)
    if not batches:
        return report
    try:
        iceberg = load_table(catalog, layer, table)
        committed = off.committed_offsets(iceberg)
    except NoSuchTableError:
        iceberg, committed = None, {}
    todo = pending(batches, committed, _in_flight(listing))
    chunk: list[pa.Table] = []
    ranges: dict[TopicPartition, OffsetRange] = {}

    def flush() -> None:
        nonlocal iceberg
        if not chunk:
            return
        rows = pa.concat_tables(chunk, promote_options="permissive")
        if iceberg is None:
            iceberg = ensure_table(catalog, layer, table, rows.schema)
        report.changes += evolve(iceberg, rows.schema)
        keep_key(iceberg, _key(last_paths))
        batch = Batch(rows, dict(ranges), coordinates=source.coordinates)
        result = commit_batch(iceberg, batch, on_state=crash_at_state)
        if result.state is CommitState.COMMITTED:
            report.rows += result.rows
            report.snapshots.append(result.snapshot_id)
            report.bytes_written += added_bytes(iceberg)
        chunk.clear()
        ranges.clear()

    last_paths: list[Path] = []
    held, unified = 0, None
    for tp, rng, paths in todo:
        part = [to_iceberg(_read(p), time_as_micros=time_as_micros) for p in paths]
        schemas = [t.schema for t in part]
        merged = _unify([unified, *schemas] if chunk else schemas)
        if merged is None and chunk:
            flush()  # a type change between batches: one append per side of it
            held, merged = 0, _unify(schemas)
        if merged is None:
            raise ValueError(
                f"bronze {table}: one batch's files have incompatible schemas: {paths}"
            )
        unified = merged
        chunk.extend(part)
        last_paths = paths
        prev = ranges.get(tp)
        ranges[tp] = OffsetRange(prev.start if prev else rng.start, rng.end)
        held += sum(t.num_rows for t in part)
        if held >= max_rows:
            flush()
            held = 0
    flush()
    if iceberg is not None:
        if small_files is not None:
            rewritten = rewrite_small_files(iceberg, small_files)
            report.small_files_rewritten = rewritten.files_in
            report.rewrite_files_written = rewritten.files_out
        expired, report.files_deleted = expire_appended(iceberg)
        report.expired = len(expired)
        report.detail = {tp.key: str(n) for tp, n in off.committed_offsets(iceberg).items()}
    return report


def _unify(schemas: list[pa.Schema]) -> pa.Schema | None:
    """The schema ``concat_tables(promote_options="permissive")`` gives, or None: a column
    whose types cannot be promoted one into the other (an ALTER COLUMN TYPE between batches)."""
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
