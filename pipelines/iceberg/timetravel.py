"""Time travel over the Iceberg tables: a table as committed at an instant, read from Iceberg.

The same procedure and SQL as ``silver.timetravel.as_of``, on Iceberg's copies: start from the
newest **Iceberg snapshot** of ``silver.<table>`` whose watermark time (``changelake.
watermark-ts`` in its summary) is at or before the instant, read at that snapshot with DuckDB's
``icebergscan(..., snapshot_from_id)``, and apply the events of ``bronze.<table>`` after its
watermark LSN and committed by the instant, cut at the first transaction whose END (in
``bronze._transactions``) has not been published: ``rules.events_sql`` and
``plan.compact_table_sql``, the one definition compaction uses. So another engine's
``VERSION AS OF`` and changelake's ``as_of`` meet at every silver snapshot, and between them
changelake's answer is exact to the transaction.

Values come back in Iceberg's types (``conform``): what Spark or Trino read from the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from pipelines.bronze.layout import TRANSACTIONS
from pipelines.config import Settings
from pipelines.contract import META_COLUMNS
from pipelines.iceberg import engine
from pipelines.iceberg.catalog import open_catalog
from pipelines.iceberg.names import BRONZE, SILVER
from pipelines.iceberg.silver_publish import WATERMARK_LSN_KEY, WATERMARK_TS_KEY
from pipelines.iceberg.sources import bronze_events, columns, key_of, maybe_table, scan
from pipelines.naming import QualifiedName, quote_ident
from pipelines.silver import plan, rules
from pipelines.silver.timetravel import NoSilverData, mark_partial, to_instant, ts_literal


@dataclass(frozen=True)
class Base:
    """The Iceberg silver snapshot an ``as_of`` starts from."""

    snapshot_id: int
    watermark_lsn: int | None
    watermark_time: datetime


def watermarked(silver: Table) -> list[Base]:
    """The snapshots of ``silver`` with their watermark (``silver_publish``'s summary), oldest
    first."""
    out = []
    for s in sorted(silver.snapshots(), key=lambda s: s.sequence_number or 0):
        summary = s.summary
        text = summary.get(WATERMARK_TS_KEY) if summary is not None else None
        if text is None:
            continue
        lsn = summary.get(WATERMARK_LSN_KEY)
        out.append(
            Base(s.snapshot_id, int(lsn) if lsn is not None else None, datetime.fromisoformat(text))
        )
    return out


def base_for(silver: Table, ts: datetime) -> Base | None:
    """The newest snapshot of ``silver`` holding nothing committed after ``ts``."""
    best: Base | None = None
    for b in watermarked(silver):
        if b.watermark_time <= ts and (best is None or b.watermark_time >= best.watermark_time):
            best = b
    return best


def as_of(
    settings: Settings,
    table: QualifiedName,
    instant: datetime | str,
    *,
    where: str | None = None,
) -> pa.Table:
    """``table`` as committed at ``instant``, from the Iceberg tables (see the module);
    ``where`` is the caller's own filter, run where it can read nothing but these rows. Warns
    ``SnapshotInProgress`` like the lake's ``as_of`` when the table was still being
    snapshotted at ``instant``."""
    ts = to_instant(instant)
    rows = _as_of(settings, table, ts)
    if where:
        con = duckdb.connect()
        try:
            con.execute("SET enable_external_access = false")
            con.register("as_of_rows", rows)
            rows = con.sql("SELECT * FROM as_of_rows").filter(where).to_arrow_table()
        finally:
            con.close()
    # the lake's record of incremental snapshots (bronze _notifications) says whether the
    # table's existing rows were all in by then, as for the lake's own as_of
    return mark_partial(rows, settings.lake_root, table, ts)


def _as_of(settings: Settings, table: QualifiedName, ts: datetime) -> pa.Table:
    catalog = open_catalog(settings, create_namespaces=False)
    silver, bronze = maybe_table(catalog, SILVER, table), maybe_table(catalog, BRONZE, table)
    base = base_for(silver, ts) if silver is not None else None
    if base is None and bronze is None:
        raise NoSilverData(f"no Iceberg silver snapshot or bronze events for {table} at {ts}")
    with engine.connect(settings) as con:
        sql = replay_sql(con, catalog, table, (silver, base), bronze, "as_of_events", ts)
        return con.sql(sql).to_arrow_table()


def key_schema(settings: Settings, table: QualifiedName) -> tuple[list[str], pa.Schema]:
    """``table``'s primary-key columns and its Iceberg bronze schema (as Arrow), for typing
    key values; ``NoSilverData`` before anything landed."""
    catalog = open_catalog(settings, create_namespaces=False)
    bronze = maybe_table(catalog, BRONZE, table)
    if bronze is None:
        raise NoSilverData(f"no Iceberg bronze events for {table}")
    return key_of(maybe_table(catalog, SILVER, table), bronze), bronze.schema().as_arrow()


def history(settings: Settings, table: QualifiedName, values: Sequence[Any]) -> pa.Table:
    """Every version of the row whose key is ``values`` (op, commit time, tx id), TOAST
    placeholders resolved: ``silver.timetravel.history``'s rule over Iceberg bronze, as the
    DuckDB file's ``history_`` macro runs it. Values in Iceberg's types."""
    catalog, bronze, keys = _landed(settings, table)
    if not keys:
        raise ValueError(f"{table} has no primary key; history needs one")
    if len(values) != len(keys):
        raise ValueError(f"{table} key is {keys}: expected {len(keys)} value(s)")
    match = " AND ".join(f"{quote_ident(k)} = ${i + 1}" for i, k in enumerate(keys))
    with engine.connect(settings) as con:
        sql = versions_sql(con, catalog, table, bronze, keys, match)
        return con.sql(sql, params=list(values)).to_arrow_table()


def table_versions_sql(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: QualifiedName, match: str = "TRUE"
) -> str:
    """``versions_sql`` of ``table`` in the lake's catalog, its key from its tables."""
    catalog, bronze, keys = _landed(settings, table)
    return versions_sql(con, catalog, table, bronze, keys, match)


def _landed(settings: Settings, table: QualifiedName) -> tuple[SqlCatalog, Table, list[str]]:
    """The catalog, ``table``'s Iceberg bronze and its key; NoSilverData before it landed."""
    catalog = open_catalog(settings, create_namespaces=False)
    bronze = maybe_table(catalog, BRONZE, table)
    if bronze is None:
        raise NoSilverData(f"no Iceberg bronze events for {table}: land them first")
    return catalog, bronze, key_of(maybe_table(catalog, SILVER, table), bronze)


def versions_sql(
    con: duckdb.DuckDBPyConnection,
    catalog: SqlCatalog,
    table: QualifiedName,
    bronze: Table,
    keys: list[str],
    match: str = "TRUE",
) -> str:
    """The SQL of every version of the rows of ``table`` that ``match`` selects (op, commit
    time, tx id, LSNs; TOAST placeholders resolved, the transaction-safe cut applied):
    ``rules.history_sql`` over Iceberg bronze, as ``history`` and the enrichment's ``lake``
    strategy read it."""
    tx = maybe_table(catalog, BRONZE, TRANSACTIONS)
    source = bronze_events(bronze)
    cols = [c for c in columns(con, source) if c not in META_COLUMNS]
    ev = rules.events_sql(
        source,
        cols,
        tx_source=scan(tx) if tx is not None else None,
        data_collection=table.data_collection,
    )
    return rules.history_sql(ev, cols, keys, match)


def replay_sql(
    con: duckdb.DuckDBPyConnection,
    catalog: SqlCatalog,
    table: QualifiedName,
    start: tuple[Table | None, Base | None],
    bronze: Table | None,
    events: str,
    until: datetime | None = None,
    base_relation: str | None = None,
) -> str:
    """The SQL of ``table``'s state: silver snapshot ``start`` (none: empty) plus the bronze
    events after its watermark, committed by ``until`` (None: all complete ones), which it
    materializes as ``events`` (``plan.materialize_events``); the one procedure ``as_of`` and
    the Iceberg compaction (``compaction``) share. ``base_relation``: the start snapshot's
    rows already in ``con`` (instead of reading it from Iceberg here)."""
    silver, base = start
    key = key_of(silver, bronze)
    base_rel, cols = None, []
    if base is not None and silver is not None:
        base_rel = base_relation or scan(silver, base.snapshot_id)
        cols = [c for c in columns(con, base_rel) if c not in rules.KEEP_META]
    if bronze is None:
        return f"SELECT * FROM {base_rel}"  # noqa: S608
    after = base.watermark_lsn if base is not None else None
    source = bronze_events(bronze, after_lsn=after)
    bronze_cols = [c for c in columns(con, source) if c not in META_COLUMNS]
    cols += [c for c in bronze_cols if c not in cols]
    tx = maybe_table(catalog, BRONZE, TRANSACTIONS)
    plan.materialize_events(
        con,
        events,
        source=source,
        columns=cols,
        tx_source=scan(tx) if tx is not None else None,
        data_collection=table.data_collection,
        after_lsn=str(after) if after is not None else None,
        until_ts=ts_literal(until) if until is not None else None,
        absent=[c for c in cols if c not in bronze_cols],
        since=base.watermark_time if base else None,
    )
    return plan.compact_table_sql(con, events, cols, key, base_rel)
