"""The compaction rule, written once in SQL and shared by compaction, time travel and the catalog.

Order of events: ``(_commit_lsn, _lsn, _partition, _offset)``, where ``_commit_lsn`` falls back
to ``_lsn`` when absent (snapshot reads). LSN alone is wrong: concurrent transactions interleave
their change LSNs but commit in ``_commit_lsn`` order, and snapshot ``r`` rows share one LSN.

Incremental-snapshot reads (``_snapshot = 'incremental'``, Debezium's signal-driven chunks) have
no ``_lsn`` and no transaction; their ``_commit_lsn`` is the stream's last commit when the chunk's
window closed. Debezium drops from a chunk every key changed inside its window, so a chunk row
is newer than every change of its key committed up to that LSN and older than every later one:
a NULL ``_lsn`` sorts after every change of the same ``_commit_lsn`` (``ORDER_LSN``), and such
rows at exactly a base's watermark are read again (a chunk can land after a compaction that
took streamed changes of the same commit LSN; re-applying it is idempotent, nothing newer than
the watermark is in the base). They are not a unit of the cut below: no END is ever expected.

Rule, per primary key:
* re-delivered duplicates (same key, ``_commit_lsn``, ``_lsn``, ``_op``) collapse to the lowest
  offset (Kafka Connect replays after a restart);
* a truncate (``t``) drops every earlier version of every key; later events still apply;
* a column listed in ``_unavailable`` (unchanged TOAST) takes the value of the newest earlier
  version of that key where it was real -- carried forward through any chain of placeholders
  with ``last_value(struct IGNORE NULLS)`` so a real NULL still counts as a value;
* the newest version wins; if it is a delete the key is gone. A primary-key change arrives as
  delete(old key) + create(new key) and needs nothing special.
Tables without a key (``changelake.key = []``) are append-only: every ``r``/``c``/``u`` row after
the last truncate is kept, deletes are ignored (there is no key to delete by), duplicates
collapse on ``(_commit_lsn, _lsn, _op)`` except ``r`` rows (which share one LSN).

Transaction-safe cut (``events_sql``): only events before the first *incomplete* unit are used.
A unit is a transaction (events with ``_tx_order``): complete when the bronze ``_transactions``
END for its ``_tx_id`` has landed and the distinct ``_tx_order`` values of this table's events
reach the END's ``event_count`` for this data collection (no END landed yet: incomplete).
Events without ``_tx_order`` (transaction metadata off) are complete. An initial snapshot (``r`` rows with
``_snapshot`` in true/first/.../last) is a unit sharing one LSN: complete once its
``last``/``last_in_data_collection`` row has landed.
"""

# ruff: noqa: S608  -- SQL built only from quote_ident/quote_literal output and own fragments
from __future__ import annotations

from collections.abc import Sequence

from pipelines.naming import quote_ident, quote_literal

KEEP_META = ("_source_ts", "_commit_lsn", "_lsn", "_tx_id")
_SNAPSHOT_MARKS = "('true', 'first', 'first_in_data_collection', 'last_in_data_collection', 'last')"
_LAST_MARKS = "('last', 'last_in_data_collection')"
_MAX_LSN = "9223372036854775807"
MIN_LSN = "(-9223372036854775807 - 1)"


def _q(cols: Sequence[str]) -> str:
    return ", ".join(quote_ident(c) for c in cols)


EFFECTIVE_LSN = "coalesce(_commit_lsn, _lsn)"
# the bronze metadata an events window reads (the cut's and the compaction's inputs)
_SCANNED_META = (
    "_op", "_source_ts", "_lsn", "_commit_lsn", "_tx_id", "_tx_order", "_snapshot",
    "_partition", "_offset", "_unavailable",
)  # fmt: skip
# the change LSN as ordered: an incremental-snapshot read (no _lsn) after its commit LSN's changes
ORDER_LSN = f"coalesce(_lsn, {_MAX_LSN})"


def window_sql(after_lsn: str | None = None, until_ts: str | None = None) -> str:
    """The row filter of an events window (see ``events_sql``)."""
    conds = ["TRUE"]
    if after_lsn is not None:
        conds.append(
            f"({EFFECTIVE_LSN} > {after_lsn} OR ({EFFECTIVE_LSN} = {after_lsn} "
            "AND _lsn IS NULL AND _snapshot = 'incremental'))"
        )
    if until_ts is not None:
        conds.append(f"_source_ts <= {until_ts}")
    return " AND ".join(conds)


def events_sql(
    source: str,
    columns: Sequence[str],
    *,
    tx_source: str | None,
    data_collection: str,
    after_lsn: str | None = None,
    until_ts: str | None = None,
    where: str | None = None,
    absent: Sequence[str] = (),
    tx_since: str | None = None,
    single_scan: bool = False,
) -> str:
    """Events of one table usable now: after ``after_lsn``, committed by ``until_ts``, before the cut.

    ``tx_since``: read only the ENDs committed at or after this instant (an END's ``ts`` is its
    transaction's commit time). Missing ENDs can only make the cut earlier, never later, so a
    caller that prunes checks the cut did not stop short (``plan.materialize_events``).

    ``absent``: columns of ``columns`` that no file of ``source`` has (a column dropped before
    these files were written, known from the base snapshot); they read as NULL.

    ``single_scan``: ``source`` is a glob that grows while the query runs (the live views). It is
    then read once, into a materialized CTE, so the cut and the rows come from the same files; two
    scans expand the glob at different instants, and a file published between them would add
    half a transaction the cut never saw.

    ``source``/``tx_source`` are table functions (``read_parquet(...)``); ``after_lsn`` and
    ``until_ts`` are SQL expressions; ``where`` an extra row filter (applied after the cut is
    computed on all rows, so filtering to one key cannot make a transaction look incomplete).
    """
    eff = EFFECTIVE_LSN
    window = window_sql(after_lsn, until_ts)
    units = [
        f"""SELECT min(_commit_lsn) AS c FROM win
            WHERE _op = 'r' AND _snapshot IN {_SNAPSHOT_MARKS}
            GROUP BY _commit_lsn HAVING NOT bool_or(_snapshot IN {_LAST_MARKS})"""
    ]
    # Only the ENDs of transactions in the window can matter; filtering them first pays off when
    # the window is a tail of the history (incremental, as_of), not on a full rebuild.
    in_window = (
        " AND CAST(split_part(id, ':', 1) AS BIGINT) IN "
        "(SELECT _tx_id FROM win WHERE _tx_id IS NOT NULL)"
        if after_lsn is not None
        else ""
    )
    if tx_since is not None:  # row-group statistics on ts let DuckDB skip old files unread
        in_window = f" AND ts >= {tx_since}" + in_window
    if tx_source is not None:
        ends_body = f"""SELECT CAST(split_part(id, ':', 1) AS BIGINT) AS _tx_id,
                   max(dc.event_count) AS expected
            FROM (SELECT id, unnest(data_collections) AS dc FROM {tx_source}
                  WHERE status = 'END'{in_window})
            WHERE dc.data_collection = {quote_literal(data_collection)}
            GROUP BY 1"""
    else:  # nothing landed from the transaction topic yet: no transaction is complete
        ends_body = "SELECT NULL::BIGINT AS _tx_id, NULL::BIGINT AS expected WHERE false"
    ends = f",\n        ends AS ({ends_body})"
    # aggregate per transaction first, then join the ENDs: one row per transaction meets them,
    # not one per event
    units.append(
        """SELECT g.c FROM (
               SELECT _tx_id, min(_commit_lsn) AS c, count(DISTINCT _tx_order) AS n FROM win
               WHERE _tx_order IS NOT NULL AND _op <> 'r' GROUP BY _tx_id) g
           LEFT JOIN ends e USING (_tx_id)
           WHERE e.expected IS NULL OR g.n < e.expected"""
    )
    unit_sql = " UNION ALL ".join(units)
    extra = f" AND ({where})" if where else ""
    select = ", ".join(
        f"NULL AS {quote_ident(c)}" if c in absent else quote_ident(c) for c in columns
    )
    rows, head = source, ""
    if single_scan:
        read = ", ".join(f"{quote_ident(c)}" for c in columns if c not in absent)
        read += (", " if read else "") + ", ".join(_SCANNED_META)
        head = f"src AS MATERIALIZED (SELECT {read} FROM {source} WHERE {window}),\n        "
        rows = "src"
    return f"""(
        WITH {head}win AS NOT MATERIALIZED (  -- a projection: re-scanning beats storing it
            SELECT _op, {eff} AS _commit_lsn, _tx_id, _tx_order, _snapshot
            FROM {rows} WHERE {window}){ends},
        cut AS (SELECT coalesce(min(c), {_MAX_LSN}) AS c FROM ({unit_sql}))
        SELECT {select}, _op, _source_ts, _lsn, {eff} AS _commit_lsn, _tx_id,
               _partition, _offset, coalesce(_unavailable, []::VARCHAR[]) AS _unavailable
        FROM {rows}
        WHERE {window} AND {eff} < (SELECT c FROM cut){extra}
    )"""


def dedup_groups(key: Sequence[str]) -> str:
    """The grouping under which events are re-delivered duplicates of each other."""
    if key:
        return f"{_q(key)}, _commit_lsn, _lsn, _op"
    return "_commit_lsn, _lsn, _op, CASE WHEN _op = 'r' THEN _offset END"


_SEQ_ZERO = (
    "struct_pack(c := CAST(-9223372036854775808 AS BIGINT), l := CAST(-9223372036854775808 AS "
    "BIGINT), p := CAST(-9223372036854775808 AS BIGINT), o := CAST(-9223372036854775808 AS BIGINT))"
)


def seq_zero(tuple_seq: bool) -> str:
    """The ``_seq`` that sorts before every event (base rows, "no truncate")."""
    return _SEQ_ZERO if tuple_seq else "0::BIGINT"


def _ordered(events: str, key: Sequence[str], dedup: bool = True, tuple_seq: bool = False) -> str:
    """CTEs ``dd`` (duplicates collapsed) and ``ev`` (with a global order number ``_seq``).

    ``dedup=False`` is only for callers that checked ``events`` holds no duplicate group, or
    that duplicates cannot matter (``plan.facts``): it skips a window sort over every event. ``tuple_seq=True`` (only when no
    ``_lsn``/``_partition``/``_offset`` is NULL) makes ``_seq`` the order tuple itself instead
    of its rank: same order, same comparisons, but no global sort of the wide rows."""
    dd = f"SELECT * FROM {events} e"
    if dedup:
        dd += (
            f" QUALIFY row_number() OVER (PARTITION BY {dedup_groups(key)} "
            "ORDER BY _partition, _offset) = 1"
        )
    if tuple_seq:
        seq = (
            f"struct_pack(c := CAST(_commit_lsn AS BIGINT), l := CAST({ORDER_LSN} AS BIGINT), "
            "p := CAST(_partition AS BIGINT), o := CAST(_offset AS BIGINT))"
        )
    else:
        seq = f"row_number() OVER (ORDER BY _commit_lsn, {ORDER_LSN}, _partition, _offset)"
    return f"""
        dd AS ({dd}),
        ev AS (SELECT * EXCLUDE (_partition, _offset), {seq} AS _seq FROM dd),
        trunc AS (SELECT coalesce(max(_seq), {seq_zero(tuple_seq)}) AS t
                  FROM ev WHERE _op = 't')"""


def _real(c: str) -> str:
    """The column's value wrapped in a struct when it is real in this version, else NULL (the
    struct keeps a real NULL distinct from "no value here")."""
    return (
        f"CASE WHEN _op <> 'd' AND NOT list_contains(_unavailable, {quote_literal(c)}) "
        f"THEN struct_pack(v := {quote_ident(c)}) END"
    )


def _lineage(key: Sequence[str], versions: str, epochs: bool = False) -> str:
    """``versions`` plus ``_lineage``: the row's identity across primary-key changes.

    ``epochs``: ``versions`` spans truncates and has ``_epoch`` (truncates before the version);
    a truncate ends every row, so a segment never crosses one (history only: compaction
    applies nothing from before the last truncate).

    A key's versions split into segments at each delete. The create half of a key change (a
    ``c`` sharing ``_commit_lsn``/``_lsn`` with a ``d``: PostgreSQL logs a key-changing UPDATE as
    one change, Debezium emits delete + create) continues the deleted segment, so an unchanged
    TOASTed column of the new key carries over from the old key -- through chains of any length
    (recursive CTE)."""
    k = _q(key)
    part = f"{k}, _epoch" if epochs else k
    sid = f"struct_pack(k := row({k}), n := _segno{', e := _epoch' if epochs else ''})"
    return f"""(
        WITH RECURSIVE seg AS MATERIALIZED (
            SELECT *, coalesce(sum(CASE WHEN _op = 'd' THEN 1 ELSE 0 END) OVER (
                PARTITION BY {part} ORDER BY _seq
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS _segno
            FROM {versions}),
        node AS MATERIALIZED (SELECT *, {sid} AS _sid FROM seg),
        links AS (SELECT c._sid AS child, d._sid AS parent FROM node c JOIN node d
                  ON c._commit_lsn = d._commit_lsn AND c._lsn = d._lsn
                  WHERE c._op = 'c' AND d._op = 'd'),
        up(child, anc, depth) AS (
            SELECT child, parent, 1 FROM links
            UNION ALL
            SELECT up.child, l.parent, up.depth + 1 FROM up JOIN links l ON l.child = up.anc),
        roots AS (SELECT child, arg_max(anc, depth) AS root FROM up GROUP BY child)
        SELECT n.* EXCLUDE (_segno, _sid), coalesce(r.root, n._sid) AS _lineage
        FROM node n LEFT JOIN roots r ON r.child = n._sid
    )"""


def needs_resolving(
    columns: Sequence[str], key: Sequence[str], toasted: Sequence[str] | None
) -> bool:
    """Whether any placeholder can need resolving (``toasted`` None: assume so)."""
    return toasted is None or any(c in columns and c not in key for c in toasted)


def _resolve(
    columns: Sequence[str],
    key: Sequence[str],
    versions: str,
    toasted: Sequence[str] | None = None,
    epochs: bool = False,
) -> str:
    """SELECT list resolving unchanged-TOAST placeholders from earlier versions of the row.

    ``toasted``: the only columns that can be placeholders in ``versions`` (None: any). Other
    columns are taken as they are; with none at all, the lineage walk is skipped too."""
    if not needs_resolving(columns, key, toasted):
        return f"SELECT {_q(columns)}, {_q(KEEP_META)}, _op, _seq FROM {versions}"
    w = "(PARTITION BY _lineage ORDER BY _seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    out = []
    for c in columns:
        qc, lc = quote_ident(c), quote_literal(c)
        if c in key or (toasted is not None and c not in toasted):
            out.append(qc)
            continue
        out.append(
            f"CASE WHEN list_contains(_unavailable, {lc}) "
            f"THEN (last_value({_real(c)} IGNORE NULLS) OVER {w}).v ELSE {qc} END AS {qc}"
        )
    lineage = _lineage(key, versions, epochs)
    return f"SELECT {', '.join(out)}, {_q(KEEP_META)}, _op, _seq FROM {lineage}"


def compact_sql(
    events: str,
    columns: Sequence[str],
    key: Sequence[str],
    base: str | None = None,
    *,
    toasted: Sequence[str] | None = None,
    dedup: bool = True,
    tuple_seq: bool = False,
) -> str:
    """Latest row per key after applying ``events`` (from ``events_sql``) on top of ``base``.

    ``base`` is a previous silver snapshot (a relation with source columns + KEEP_META) or None.
    Untouched base rows pass through; touched keys are re-resolved together with their base row.
    ``toasted``/``dedup``: facts a caller measured on ``events`` (see ``plan.facts``) that let
    the plan skip work that would change nothing; the defaults assume nothing.
    """
    cols = list(columns)
    out_cols = f"{_q(cols)}, {_q(KEEP_META)}"
    head = f"WITH {_ordered(events, key, dedup, tuple_seq)}"
    zero = seq_zero(tuple_seq)
    if not key:
        base_part = (
            f" UNION ALL BY NAME SELECT * FROM {base} WHERE (SELECT t FROM trunc) = {zero}"
            if base
            else ""
        )
        return f"""{head}
        SELECT {out_cols} FROM (
            SELECT * EXCLUDE (_op, _unavailable, _seq) FROM ev
            WHERE _op IN ('r', 'c', 'u') AND _seq > (SELECT t FROM trunc){base_part})"""
    k = _q(key)
    row = "_version"  # the whole-row alias must not be a column name (a column would win)
    while row in cols:
        row = "_" + row
    row = quote_ident(row)
    touched = f"touched AS (SELECT DISTINCT {k} FROM ev WHERE _op <> 't')"
    ev_versions = "SELECT * FROM ev WHERE _op <> 't' AND _seq > (SELECT t FROM trunc)"
    if base and not needs_resolving(cols, key, toasted):
        # an older base row can only lend placeholder values: every touched key has a newer
        # version among the events, so without placeholders the base row never matters
        versions = f"({ev_versions})"
        untouched = f"""UNION ALL BY NAME
            SELECT * FROM {base} b ANTI JOIN touched USING ({k}) WHERE (SELECT t FROM trunc) = {zero}"""
    elif base:
        versions = f"""({ev_versions}
            UNION ALL BY NAME
            SELECT b.*, 'b' AS _op, []::VARCHAR[] AS _unavailable, {zero} AS _seq
            FROM {base} b SEMI JOIN touched USING ({k}) WHERE (SELECT t FROM trunc) = {zero})"""
        untouched = f"""UNION ALL BY NAME
            SELECT * FROM {base} b ANTI JOIN touched USING ({k}) WHERE (SELECT t FROM trunc) = {zero}"""
    else:
        versions, untouched = f"({ev_versions})", ""
    return f"""{head}, {touched},
        resolved AS ({_resolve(cols, key, versions, toasted)}),
        latest AS (SELECT unnest(r) FROM (  -- newest version per key (a hash aggregate)
                   SELECT arg_max({row}, _seq) AS r FROM resolved AS {row} GROUP BY {k}))
        SELECT {out_cols} FROM (
            SELECT * EXCLUDE (_op, _seq) FROM latest WHERE _op <> 'd'
            {untouched})"""


def history_sql(events: str, columns: Sequence[str], key: Sequence[str], match: str) -> str:
    """Every version of the row(s) matching ``match`` (a predicate on key columns), placeholders
    resolved. Resolution runs over all keys first (a key change carries values across keys),
    then filters. Truncates after the row's first version are versions with op ``t``."""
    if not key:
        raise ValueError("history needs a table with a primary key")
    cols = list(columns)
    return f"""WITH {_ordered(events, key)},
        versions AS (SELECT * FROM (
            SELECT *, sum(CASE WHEN _op = 't' THEN 1 ELSE 0 END) OVER (
                ORDER BY _seq ROWS UNBOUNDED PRECEDING) AS _epoch FROM ev) WHERE _op <> 't'),
        resolved AS ({_resolve(cols, key, "versions", epochs=True)}),
        mine AS (SELECT * FROM resolved WHERE {match}),
        first AS (SELECT min(_seq) AS s FROM mine)
        SELECT {_q(cols)}, _op, _source_ts, _tx_id, _commit_lsn, _lsn FROM (
            SELECT * FROM mine
            UNION ALL BY NAME
            SELECT * EXCLUDE (_unavailable) FROM ev
            WHERE _op = 't' AND _seq > (SELECT s FROM first))
        ORDER BY _seq"""
