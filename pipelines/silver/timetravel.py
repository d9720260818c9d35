"""Time travel: a table exactly as committed at an instant, and the audit history of one row.

``as_of`` starts from the newest snapshot whose watermark time is <= the instant and applies the
bronze events committed in (watermark, instant] with the same SQL rule compaction uses, so a
transaction (one commit time, one ``_tx_id``) is wholly in or wholly out; events of a
transaction that has not fully landed are never shown (the transaction-safe cut).

An instant at which an incremental snapshot was still bringing the table's existing rows in
(``snapshot_progress``) gives a partial table: ``as_of`` then warns (``SnapshotInProgress``) and
marks the result's schema metadata ``changelake.snapshotting``, never a silent partial table.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.naming import QualifiedName, quote_ident, quote_literal
from pipelines.silver import bronze_io, plan, rules, snapshot_progress, snapshots
from pipelines.silver.engine import LakeLike, as_table, connect, lake_of


class NoSilverData(LookupError):
    """Neither a snapshot nor bronze events exist for the table."""


class SnapshotInProgress(UserWarning):
    """``as_of`` at an instant while the table's existing rows were still being snapshotted:
    rows that existed before the snapshot may be missing. ``run`` says which snapshot."""

    def __init__(self, run: snapshot_progress.SnapshotRun, instant: datetime) -> None:
        super().__init__(run.note(instant))
        self.run = run


SNAPSHOTTING_META = b"changelake.snapshotting"


def mark_partial(rows: pa.Table, lake: Path, table: QualifiedName, ts: datetime) -> pa.Table:
    """``rows`` as they are, or, when ``table``'s existing rows were still being snapshotted at
    ``ts``, with a ``SnapshotInProgress`` warning and the schema metadata saying so."""
    run = snapshot_progress.snapshotting_at(lake, table, ts)
    if run is None:
        return rows
    warnings.warn(SnapshotInProgress(run, ts), stacklevel=3)
    meta = dict(rows.schema.metadata or {})
    meta[SNAPSHOTTING_META] = json.dumps(
        {
            "id": run.id,
            "started": run.started.isoformat(),
            "finished": run.finished.isoformat() if run.finished else None,
        }
    ).encode()
    return rows.replace_schema_metadata(meta)


def to_instant(instant: datetime | str) -> datetime:
    """Parse an ISO instant; a naive one is taken as UTC."""
    ts = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def ts_literal(ts: datetime) -> str:
    return f"CAST({quote_literal(ts.isoformat())} AS TIMESTAMPTZ)"


def base_for(lake: Path, table: QualifiedName, ts: datetime) -> snapshots.Manifest | None:
    """Newest snapshot that contains nothing committed after ``ts``."""
    best = None
    for m in snapshots.list_snapshots(lake, table):
        if m.watermark_time is not None and m.watermark_time <= ts:
            best = m
    return best


def base_choice_sql(
    bases: Sequence[tuple[str, int | None, str]], ts: str
) -> tuple[str | None, str]:
    """For an instant known only when the SQL runs (``ts``, an expression: a macro's
    parameter), the base ``as_of`` starts from and its watermark: the newest snapshot whose
    watermark time is <= ts. ``bases`` are ``(watermark time as ISO text, watermark LSN,
    relation)``, oldest first (a later one with the same watermark time wins). Returns (a
    relation that is that snapshot's rows, or None when there is none; an after-LSN
    expression)."""
    by_time: dict[str, tuple[str, int | None, str]] = {}
    for b in bases:
        by_time[b[0]] = b
    chosen = sorted(by_time.values(), key=lambda b: datetime.fromisoformat(b[0]))
    if not chosen:
        return None, rules.MIN_LSN
    branches, cases = [], []
    for i, (at, lsn, relation) in enumerate(chosen):
        cond = f"{ts} >= CAST({quote_literal(at)} AS TIMESTAMPTZ)"
        if i + 1 < len(chosen):
            cond += f" AND {ts} < CAST({quote_literal(chosen[i + 1][0])} AS TIMESTAMPTZ)"
        branches.append(f"SELECT * FROM {relation} WHERE {cond}")  # noqa: S608
        after = str(int(lsn)) if lsn is not None else rules.MIN_LSN
        cases.append(f"WHEN {cond} THEN {after}")
    base = "(" + " UNION ALL BY NAME ".join(branches) + ")"
    return base, f"(CASE {' '.join(cases)} ELSE {rules.MIN_LSN} END)"


def _as_of_parts(
    con: duckdb.DuckDBPyConnection, lake: Path, table: QualifiedName, ts: datetime
) -> tuple[dict[str, Any] | None, list[str], list[str], str | None]:
    """(``rules.events_sql`` arguments, or None when no bronze is left to apply; columns; key;
    base relation). The arguments include ``since``, the base's watermark time, which only
    ``plan.materialize_events`` takes."""
    base = base_for(lake, table, ts)
    files = bronze_io.table_files(lake, table)
    done = set(base.consumed) if base else set()
    todo = [p for p in files if str(p.relative_to(lake)) not in done]
    base_rel, cols = None, []
    if base:
        cols = [c["name"] for c in base.schema if c["name"] not in rules.KEEP_META]
        base_rel = bronze_io.parquet_source(
            [snapshots.snapshot_dir(lake, table, base.snapshot_id) / "part-0.parquet"]
        )
    if not todo:
        if base_rel is None:
            raise NoSilverData(f"no silver snapshot or bronze events for {table}")
        return None, cols, base.key if base else [], base_rel
    new_cols = bronze_io.source_columns(con, todo)
    cols += [c for c in new_cols if c not in cols]
    key = base.key if base else bronze_io.key_columns(lake, table)
    tx = bronze_io.transaction_files(lake)
    args = dict(
        source=bronze_io.parquet_source(todo),
        columns=cols,
        tx_source=bronze_io.parquet_source(tx) if tx else None,
        data_collection=table.data_collection,
        after_lsn=str(base.watermark_lsn) if base and base.watermark_lsn is not None else None,
        until_ts=ts_literal(ts),
        absent=[c for c in cols if c not in new_cols],  # dropped before these files
        since=base.watermark_time if base else None,
    )
    return args, cols, key, base_rel


def as_of_query(
    con: duckdb.DuckDBPyConnection, lake: Path, table: QualifiedName, ts: datetime
) -> str:
    """The SQL for ``as_of`` (also what the catalog macros expand to for a fixed snapshot)."""
    args, cols, key, base_rel = _as_of_parts(con, lake, table, ts)
    if args is None:
        return f"SELECT * FROM {base_rel}"  # noqa: S608
    args.pop("since")
    return rules.compact_sql(rules.events_sql(**args), cols, key, base_rel)


def as_of(
    settings_or_lake: LakeLike,
    table: QualifiedName | str,
    instant: datetime | str,
    *,
    where: str | None = None,
) -> pa.Table:
    """The table as committed at ``instant``; ``where`` is the caller's own filter (run on a
    connection that can read only: external access limited to the lake, no writes).

    The events to apply are materialised first so the plan can skip the steps they do not
    need (``plan.compact_table_sql``), exactly as compaction does; the rows are those of
    ``as_of_query``. Warns ``SnapshotInProgress`` (and marks the schema metadata) when the
    table's existing rows were still being snapshotted at ``instant``."""
    lake, qn, ts = lake_of(settings_or_lake), as_table(table), to_instant(instant)
    con = connect()
    try:
        args, cols, key, base_rel = _as_of_parts(con, lake, qn, ts)
        if args is None:
            sql = f"SELECT * FROM {base_rel}"  # noqa: S608
        else:
            plan.materialize_events(con, "as_of_events", **args)
            sql = plan.compact_table_sql(con, "as_of_events", cols, key, base_rel)
        rel = con.sql(sql)
        if where:
            con.execute(f"SET allowed_directories = [{quote_literal(str(lake))}]")
            con.execute("SET enable_external_access = false")
            rel = rel.filter(where)
        rows = rel.to_arrow_table()
    finally:
        con.close()
    return mark_partial(rows, lake, qn, ts)


def history(
    settings_or_lake: LakeLike, table: QualifiedName | str, key: Mapping[str, Any] | Sequence[Any]
) -> pa.Table:
    """Every version of one row (op, commit time, tx id), TOAST placeholders resolved."""
    lake, qn = lake_of(settings_or_lake), as_table(table)
    keys = bronze_io.key_columns(lake, qn)
    if not keys:
        raise ValueError(f"{qn} has no primary key; history needs one")
    if isinstance(key, Mapping):
        if set(key) != set(keys):
            raise ValueError(f"key must name exactly {keys}, got {sorted(key)}")
        values = [key[k] for k in keys]
    else:
        values = list(key)
        if len(values) != len(keys):
            raise ValueError(f"{qn} key is {keys}: expected {len(keys)} value(s)")
    match = " AND ".join(f"{quote_ident(k)} = ${i + 1}" for i, k in enumerate(keys))
    con = connect()
    try:
        return con.sql(versions_sql(con, lake, qn, keys, match), params=values).to_arrow_table()
    finally:
        con.close()


def versions_sql(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    qn: QualifiedName,
    keys: list[str] | None = None,
    match: str = "TRUE",
) -> str:
    """The SQL of every version of the rows of ``qn`` that ``match`` selects (op, commit time,
    tx id, LSNs; TOAST placeholders resolved, the transaction-safe cut applied):
    ``rules.history_sql`` over the lake's bronze files, as ``history`` and the enrichment's
    ``lake`` strategy read it (``keys``: the table's, by default from its bronze). NoSilverData
    when nothing landed for it."""
    files = bronze_io.table_files(lake, qn)
    if not files:
        raise NoSilverData(f"no bronze events for {qn}: land them first")
    keys = keys if keys is not None else bronze_io.key_columns(lake, qn)
    cols = bronze_io.source_columns(con, files)
    tx = bronze_io.transaction_files(lake)
    ev = rules.events_sql(
        bronze_io.parquet_source(files),
        cols,
        tx_source=bronze_io.parquet_source(tx) if tx else None,
        data_collection=qn.data_collection,
    )
    return rules.history_sql(ev, cols, keys, match)
