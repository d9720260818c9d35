"""Land batches straight into Iceberg: one commit per table a batch feeds, exactly once.

``IcebergStore`` is the lander's store (``bronze.store``) for ``CHANGELAKE_LAKE_FORMAT=iceberg``.
A batch (consecutive messages of one topic-partition) feeds up to a few tables: quarantine
``quarantine.<topic>`` (undecodable messages, raw bytes and reason), the bronze tables its
change rows belong to, and the topic's **home** table: the bronze table its name says it
carries (``bronze.topics.home_tables``: a CDC topic's table, ``_events.<aggregate>``,
``_transactions``, ``_notifications``). Each table gets one ``commit.commit_batch`` append,
whose snapshot summary records the table's Kafka positions, so each table is exactly-once on
its own. Iceberg has no multi-table transaction; what makes the batch exactly-once as a whole
is the order and the choice of the position authority:

    quarantine --> other bronze tables --> home (always, an empty append when it has no rows)

The lander resumes a partition from its home table's position (``landed``). A crash before
the home commit replays the batch: every table committed before it finds its own position at
or past the batch and skips (or trims) it, the others append. A crash after it replays
nothing. A table's range starts at its own position when that is older than the batch (the
batches in between had no rows for it), so positions only ever advance by whole ranges
(``OffsetGap`` never fires on a lake landed this way). Two landers (``Member``) or a lander
racing a restarted one meet in ``commit_batch``'s optimistic concurrency: one wins each
commit, the other plans again from the new positions.

A home table that does not exist yet and gets no rows is not created: its partition resumes
from the beginning, and what was quarantined is skipped by quarantine's own positions.

A lander commits every poll, so it keeps its tables small itself: every ``EXPIRE_EVERY``
commits a table's snapshots are expired down to ``KEEP_SNAPSHOTS`` (pyiceberg copies the whole
table metadata several times per commit: with 100 snapshots a commit took 0.25 s here, with 10
it takes 0.045 s), every ``REWRITE_EVERY`` its small files are rewritten (``rewrite``), and
metadata files older than the newest ``METADATA_VERSIONS`` are deleted at commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from pipelines.bronze.layout import NOTIFICATIONS, TRANSACTIONS, BatchId
from pipelines.bronze.reader import BronzeTable
from pipelines.bronze.writer import WrittenBatch, commit_dates, crash_point, describe_key
from pipelines.config import Settings
from pipelines.contract import COMMIT_DATE
from pipelines.decode import DecodedBatch
from pipelines.iceberg import offsets as off
from pipelines.iceberg.catalog import ensure_table, load_table, open_catalog, set_properties
from pipelines.iceberg.commit import (
    BRONZE_COORDINATES,
    QUARANTINE_COORDINATES,
    Batch,
    CommitResult,
    CommitState,
    OffsetGap,
    commit_batch,
)
from pipelines.iceberg.conform import to_iceberg
from pipelines.iceberg.evolve import evolve
from pipelines.iceberg.expiry import expire_appended
from pipelines.iceberg.names import BRONZE, QUARANTINE
from pipelines.iceberg.offsets import OffsetRange, TopicPartition
from pipelines.iceberg.published import keep_key
from pipelines.iceberg.rewrite import rewrite_small_files, small_files_for
from pipelines.naming import QualifiedName

# a commit costs ~45 ms whatever its size, and a poll brings ~1 MiB per partition: a backlog's
# polls are merged into batches of this many value bytes first (the lander's ``Prefetcher``)
BATCH_BYTES = 32 * 2**20
EXPIRE_EVERY = 10  # commits of one table between snapshot expiries
KEEP_SNAPSHOTS = 10  # the position is in the newest; rewrites copy it (``rewrite``)
REWRITE_EVERY = 50  # commits of one table between small-file checks
METADATA_VERSIONS = 100  # previous metadata files kept (readers of an older one: DuckDB views)
LANDING_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": str(METADATA_VERSIONS),
    # every append adds a manifest; pyiceberg's fast append (its default, unlike Java
    # Iceberg's) never merges them, so a commit copied a manifest list that grew by one entry
    # per commit (32 ms -> 62 ms over 600 commits here) and every scan opened every manifest;
    # merging keeps the count near min-count-to-merge (100) and the commit cost flat (~42 ms)
    "commit.manifest-merge.enabled": "true",
}


def crash_at_landing(state: CommitState) -> None:
    """Tests: ``CHANGELAKE_CRASH_AT=land_<state>`` SIGKILLs a lander entering ``state``."""
    crash_point(f"land_{state.value}")


@dataclass(frozen=True)
class Part:
    """The rows of one batch for one Iceberg table."""

    layer: str
    name: BronzeTable | str  # a bronze table, or the quarantined topic
    rows: pa.Table | None  # None: the home table, which got no rows from this batch
    coordinates: tuple[str, str, str] = BRONZE_COORDINATES
    key: list[str] | None = None


def _dated(rows: pa.Table, ingested_at: datetime) -> pa.Table:
    """Bronze rows as the lake reads them: ``_commit_date`` (the Parquet lake's hive folder)
    as the last column."""
    if COMMIT_DATE in rows.column_names:
        rows = rows.drop_columns([COMMIT_DATE])
    return rows.append_column(COMMIT_DATE, commit_dates(rows, ingested_at))


def parts_of(
    decoded: DecodedBatch,
    topic: str,
    home: BronzeTable,
    ingested_at: datetime,
    *,
    time_as_micros: bool,
) -> list[Part]:
    """What ``decoded`` (a batch of ``topic``) commits, in commit order: quarantine, other
    tables, ``home`` last."""
    bronze: dict[BronzeTable, pa.Table] = {n: t for n, t in decoded.tables.items() if t.num_rows}
    for name, t in ((TRANSACTIONS, decoded.transactions), (NOTIFICATIONS, decoded.notifications)):
        if t is not None and t.num_rows:
            bronze[name] = t
    parts = []
    if decoded.quarantine is not None and decoded.quarantine.num_rows:
        rows = to_iceberg(decoded.quarantine, time_as_micros=time_as_micros)
        parts.append(Part(QUARANTINE, topic, rows, QUARANTINE_COORDINATES))
    for name in sorted(bronze, key=str):
        if name != home:
            parts.append(_bronze_part(name, bronze[name], ingested_at, time_as_micros))
    if home in bronze:
        parts.append(_bronze_part(home, bronze[home], ingested_at, time_as_micros))
    else:
        parts.append(Part(BRONZE, home, None))
    return parts


def _bronze_part(name: BronzeTable, t: pa.Table, ingested_at: datetime, micros: bool) -> Part:
    rows = to_iceberg(_dated(t, ingested_at), time_as_micros=micros)
    return Part(BRONZE, name, rows, key=describe_key(t.schema.metadata))


def commit_range(
    table: Table, batch: BatchId, rows: pa.Table, coordinates: tuple[str, str, str]
) -> CommitResult:
    """Commit ``rows`` for ``batch``'s range, the range starting at the table's own
    position when that is older (see the module): the batches in between had no rows for
    it. The position is the table's as this process last saw it (commit_batch refreshes
    before it plans, and a position only grows); one that another committer recorded
    meanwhile for a partition this table had never seen makes the plan refuse a gap: then
    refresh and plan again."""
    tp = TopicPartition(batch.topic, batch.partition)
    for fresh in (False, True):
        if fresh:
            table.refresh()
        position = off.committed_offsets(table).get(tp)
        start = batch.first if position is None else min(position, batch.first)
        ranges = {tp: OffsetRange(start, batch.last + 1)}
        try:
            return commit_batch(
                table, Batch(rows, ranges, coordinates=coordinates), on_state=crash_at_landing
            )
        except OffsetGap:
            if fresh:
                raise
    raise AssertionError("unreachable")


class UnknownTopic(ValueError):
    """A batch of a topic the store has no home table for (not one the lander was given)."""


class IcebergStore:
    """The lander's store for the Iceberg tables (see the module). Pickles for the decode
    process: the catalog and tables are opened on first use in each process."""

    exclusive = False
    batch_bytes = BATCH_BYTES

    def __init__(self, settings: Settings, homes: Mapping[str, BronzeTable]) -> None:
        self.settings, self.homes = settings, dict(homes)
        self._catalog: SqlCatalog | None = None
        self._tables: dict[tuple[str, str], Table] = {}
        self._commits: dict[tuple[str, str], int] = {}
        self._evolved: dict[tuple[str, str], tuple[int, pa.Schema]] = {}

    def __getstate__(self) -> dict:
        return {"settings": self.settings, "homes": self.homes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["settings"], state["homes"])

    @property
    def catalog(self) -> SqlCatalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        return self._catalog

    def _table(self, layer: str, name: BronzeTable | str, schema: pa.Schema | None) -> Table | None:
        """The table, created with ``schema`` when missing (None: do not create)."""
        ident = (layer, str(name))
        if ident not in self._tables:
            try:
                self._tables[ident] = load_table(self.catalog, layer, name)
            except NoSuchTableError:
                if schema is None:
                    return None
                self._tables[ident] = ensure_table(self.catalog, layer, name, schema)
            set_properties(self._tables[ident], LANDING_PROPERTIES)
        return self._tables[ident]

    def landed(self, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """Highest landed offset per partition of ``topics``: the home tables' positions."""
        out: dict[tuple[str, int], int] = {}
        for topic in sorted(set(topics)):
            table = self._table(BRONZE, self._home(topic), None)
            if table is None:
                continue
            table.refresh()
            for partition, position in off.resume_positions(table, topic).items():
                out[(topic, partition)] = position - 1
        return out

    def _home(self, topic: str) -> BronzeTable:
        try:
            return self.homes[topic]
        except KeyError:
            raise UnknownTopic(f"no bronze table is the home of topic {topic!r}") from None

    def write(self, batch: BatchId, decoded: DecodedBatch, ingested_at: datetime) -> WrittenBatch:
        out = WrittenBatch(batch)
        micros = self.settings.iceberg_time_as_micros
        home = self._home(batch.topic)
        for part in parts_of(decoded, batch.topic, home, ingested_at, time_as_micros=micros):
            table = self._table(part.layer, part.name, part.rows.schema if part.rows else None)
            if table is None:
                continue  # a home with no rows yet: nothing to record (see the module)
            rows = part.rows
            if rows is None:
                rows = table.schema().as_arrow().empty_table()
            else:
                self._evolve(table, part)
            result = commit_range(table, batch, rows, part.coordinates)
            if result.state is CommitState.COMMITTED and part.rows is not None:
                self._count(out, part, result.rows)
                self._time(out, part, decoded)
            self._maintain(table, part.layer, str(part.name))
        return out

    @staticmethod
    def _time(out: WrittenBatch, part: Part, decoded: DecodedBatch) -> None:
        """The freshness columns of the decoded rows ``part`` committed (lake names, types)."""
        if part.layer != BRONZE:
            return
        if part.name == TRANSACTIONS:
            out.time_transactions(decoded.transactions)
        elif isinstance(part.name, QualifiedName) and part.name in decoded.tables:
            out.time_rows(part.name, decoded.tables[part.name])

    def _evolve(self, table: Table, part: Part) -> None:
        """``evolve`` + the key property, skipped when these rows' schema already met this
        table schema (the common case: every batch of a table has the same columns)."""
        assert part.rows is not None
        seen = (table.schema().schema_id, part.rows.schema)
        ident = (part.layer, str(part.name))
        if self._evolved.get(ident) == seen:
            return
        evolve(table, part.rows.schema)
        keep_key(table, part.key)
        self._evolved[ident] = (table.schema().schema_id, part.rows.schema)

    @staticmethod
    def _count(out: WrittenBatch, part: Part, rows: int) -> None:
        if part.layer == QUARANTINE:
            out.quarantined += rows
        elif part.name == TRANSACTIONS:
            out.transactions += rows
        elif part.name == NOTIFICATIONS:
            out.notifications += rows
        else:
            out.rows[str(part.name)] = out.rows.get(str(part.name), 0) + rows

    def _maintain(self, table: Table, layer: str, name: str) -> None:
        ident = (layer, name)
        n = self._commits[ident] = self._commits.get(ident, 0) + 1
        policy = small_files_for(self.settings)
        if policy is not None and n % REWRITE_EVERY == 0:
            rewrite_small_files(table, policy)
        if n % EXPIRE_EVERY == 0:
            expire_appended(table, KEEP_SNAPSHOTS)
