"""The DuckDB catalog file ``<lake>/catalog.duckdb``: what analysts open read-only.

Per silver table, in a DuckDB schema named like the source schema:
* the live view ``"<schema>"."<table>"``: the newest silver snapshot plus every bronze event
  landed after its watermark whose transaction is complete, merged by the compaction rule
  (merge-on-read). Its bronze source is a glob, so it shows a change as soon as bronze has it,
  without waiting for a compaction or a catalog rewrite; it equals ``as_of(now())``. (Until
  the first transaction END has landed the view has no transactions to complete and shows the
  snapshot; the compaction that follows that END rewrites the catalog.)
* the snapshot-only view ``"<schema>"."snapshot_<table>"`` over ``current`` (the last
  compaction, and what the dbt models read);
* a table macro ``"<schema>"."as_of_<table>"(ts)`` -- the table as committed at ``ts``;
* a table macro ``"<schema>"."history_<table>"(key_1, ...)`` -- every version of one row.
The macros expand to the same SQL (``pipelines.silver.rules``) the Python API runs, over the
snapshots and bronze files present when the catalog was written (it is rewritten after every
compaction and retention). The file is built under a temporary name by one short connection and
renamed into place, so a reader holding the old file open is never disturbed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb

from pipelines.naming import QualifiedName, quote_ident, quote_literal
from pipelines.silver import bronze_io, rules, snapshots
from pipelines.silver.engine import LakeLike, connect, lake_of
from pipelines.silver.timetravel import base_choice_sql

SNAPSHOT_VIEW_PREFIX = "snapshot_"  # "<schema>"."snapshot_<table>": the last compaction only


def catalog_path(settings_or_lake: LakeLike) -> Path:
    return lake_of(settings_or_lake) / "catalog.duckdb"


def write_catalog(settings_or_lake: LakeLike) -> Path:
    """(Re)build the catalog for every table that has a silver snapshot."""
    lake = lake_of(settings_or_lake)

    def statements(_con: duckdb.DuckDBPyConnection) -> Iterator[str]:
        for qn in snapshots.silver_tables(lake):
            yield from table_statements(lake, qn)

    return replace_duckdb_file(catalog_path(lake), statements)


def replace_duckdb_file(
    path: Path,
    statements: Callable[[duckdb.DuckDBPyConnection], Iterable[str]],
    connect: Callable[[str], AbstractContextManager[duckdb.DuckDBPyConnection]] | None = None,
) -> Path:
    """Build a DuckDB file by running ``statements(con)`` on a connection to a temporary file
    beside ``path`` (``connect(file)``: a context giving one whose default database is that
    file; default: a plain connection of it), then rename it into place: a reader holding the
    old file open is never disturbed, and no reader sees a half-built one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".catalog-{os.getpid()}-{uuid.uuid4().hex}.duckdb")
    tmp.unlink(missing_ok=True)
    with (connect or _own_connection)(str(tmp)) as con:
        for stmt in statements(con):
            con.execute(stmt)
    os.replace(tmp, path)
    return path


@contextmanager
def _own_connection(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(path)
    try:
        yield con
        con.execute("CHECKPOINT")
    finally:
        con.close()


def table_statements(lake: Path, qn: QualifiedName) -> list[str]:
    """DDL for one table's view and macros."""
    snaps = snapshots.list_snapshots(lake, qn)
    cur = snapshots.current(lake, qn)
    if cur is None:
        return []
    schema = quote_ident(qn.schema)
    glob = snapshots.table_dir(lake, qn) / "current" / "*.parquet"
    snapshot_view = f"SELECT * FROM read_parquet({quote_literal(str(glob))})"  # noqa: S608
    out = [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"CREATE OR REPLACE VIEW {schema}.{quote_ident(SNAPSHOT_VIEW_PREFIX + qn.table)} AS "
        + snapshot_view,
    ]
    files = bronze_io.table_files(lake, qn)
    live = f"CREATE OR REPLACE VIEW {schema}.{quote_ident(qn.table)} AS "
    if not files:
        return [*out, live + snapshot_view]
    con = connect()
    try:
        bronze_cols = bronze_io.source_columns(con, files)
    finally:
        con.close()
    cols = [c["name"] for c in cur.schema if c["name"] not in rules.KEEP_META]
    cols += [c for c in bronze_cols if c not in cols]
    key = cur.key
    tx = bronze_io.transaction_files(lake)
    common = {
        "tx_source": bronze_io.parquet_source(tx) if tx else None,
        "data_collection": qn.data_collection,
    }
    out.append(live + live_sql(lake, qn, cur, cols, key, bronze_cols, bool(tx)))
    source = bronze_io.parquet_source(files)
    bases = _snapshot_bases(lake, qn, snaps)
    out += time_travel_macros(schema, qn.table, source, cols, key, bases, common)
    return out


def time_travel_macros(
    schema: str,
    name: str,
    source: str,
    cols: list[str],
    key: list[str],
    bases: list[tuple[str, int | None, str]],
    common: dict,
) -> list[str]:
    """``schema."as_of_<name>"(ts)`` and (with a key) ``schema."history_<name>"(key...)``
    over the events in ``source``, starting from ``bases`` (``timetravel.base_choice_sql``);
    ``common`` are the other ``rules.events_sql`` arguments. Both catalog files use it."""
    ts = "CAST(_as_of_ts AS TIMESTAMPTZ)"
    base, after = base_choice_sql(bases, ts)
    ev = rules.events_sql(source, cols, after_lsn=after, until_ts=ts, **common)
    out = [
        f"CREATE OR REPLACE MACRO {schema}.{quote_ident('as_of_' + name)}(_as_of_ts) "
        f"AS TABLE {rules.compact_sql(ev, cols, key, base)}"
    ]
    if key:
        params = [f"_key_{i + 1}" for i in range(len(key))]
        match = " AND ".join(f"{quote_ident(k)} = {p}" for k, p in zip(key, params, strict=True))
        hev = rules.events_sql(source, cols, **common)
        out.append(
            f"CREATE OR REPLACE MACRO {schema}.{quote_ident('history_' + name)}"
            f"({', '.join(params)}) AS TABLE {rules.history_sql(hev, cols, key, match)}"
        )
    return out


def live_sql(
    lake: Path,
    qn: QualifiedName,
    cur: snapshots.Manifest,
    cols: list[str],
    key: list[str],
    bronze_cols: list[str],
    has_tx: bool,
) -> str:
    """The live view's query: ``cur`` plus the complete bronze events after its watermark.

    Bronze is read through globs (``bronze_io.live_source``), so files landed after the catalog
    was written count too; ``cur`` and its watermark are fixed here, together, so the base and
    the replayed tail always fit (a later compaction rewrites the catalog).
    """
    base = bronze_io.parquet_source(
        [snapshots.snapshot_dir(lake, qn, cur.snapshot_id) / "part-0.parquet"]
    )
    after = str(int(cur.watermark_lsn)) if cur.watermark_lsn is not None else rules.MIN_LSN
    ev = rules.events_sql(
        bronze_io.live_source(bronze_io.table_dir(lake, qn)),
        cols,
        tx_source=bronze_io.live_source(bronze_io.table_dir(lake, "_transactions"))
        if has_tx
        else None,
        data_collection=qn.data_collection,
        after_lsn=after,
        absent=[c for c in cols if c not in bronze_cols],
        single_scan=True,
    )
    return rules.compact_sql(ev, cols, key, base)


def _snapshot_bases(
    lake: Path, qn: QualifiedName, snaps: list[snapshots.Manifest]
) -> list[tuple[str, int | None, str]]:
    """(watermark time, watermark LSN, relation) of each snapshot, oldest first (the choice
    ``timetravel.base_for`` makes is then ``base_choice_sql``'s)."""
    return [
        (
            m.watermark_ts,
            m.watermark_lsn,
            bronze_io.parquet_source(
                [snapshots.snapshot_dir(lake, qn, m.snapshot_id) / "part-0.parquet"]
            ),
        )
        for m in snaps
        if m.watermark_ts is not None
    ]
