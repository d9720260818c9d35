"""How fresh the lake is: commit -> bronze per event, commit -> queryable per transaction.

``changelake run`` hands every landed batch here (``observe``), in either lake format: the
batch's ``WrittenBatch`` carries the few columns of the rows it wrote that this needs
(``bronze.writer.TIMING_COLUMNS``: each event's commit time ``_source_ts`` and transaction
coordinates; of the transactions the ENDs: commit time, expected events per table), so
nothing is read back from the lake. A transaction becomes queryable in the live views when its
END and all its events for the landed tables are in bronze *and* every transaction committed
before it is too (the live views cut at the first incomplete transaction), so ENDs are released
in commit order. Vectorised with pyarrow; the per-transaction bookkeeping is bounded
(``max_pending``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.bronze.writer import TX_TIMING_COLUMNS, WrittenBatch
from pipelines.naming import QualifiedName


def _epoch_us(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Microseconds since the epoch of a timestamp column (any unit, any zone)."""
    return pc.cast(pc.cast(col, pa.timestamp("us", tz="UTC")), pa.int64())


@dataclass
class _Tx:
    commit_ts: float | None = None  # epoch seconds, from the END
    expected: dict[str, int] | None = None  # data collection -> events (from the END)
    got: dict[str, int] = field(default_factory=dict)
    first_seen: float = field(default_factory=time.time)


class Freshness:
    """Tracks transactions until they are queryable; returns latencies as they become known."""

    def __init__(
        self, tables: list[QualifiedName], since: float, max_pending: int = 200_000
    ) -> None:
        """``since``: the service's start; transactions committed before it are not tracked
        (a previous process may have landed part of them)."""
        self.since, self.max_pending = since, max_pending
        self.tables = {t.data_collection for t in tables}
        self.pending: OrderedDict[int, _Tx] = OrderedDict()  # END order = commit order
        self.early: dict[int, _Tx] = {}  # events seen before their END
        self.dropped = 0

    def observe(self, written: WrittenBatch, landed_at: float) -> tuple[list[float], list[float]]:
        """(commit->bronze seconds per event, commit->queryable seconds per transaction)."""
        c2b: list[float] = []
        for table, rows in written.timing.items():
            c2b += self._table_rows(table.data_collection, rows, landed_at)
        tx = written.tx_timing
        if tx is not None and set(TX_TIMING_COLUMNS) <= set(tx.column_names):
            self._tx_rows(tx)
        return c2b, self._release(landed_at)

    def _table_rows(self, table: str, t: pa.Table, landed_at: float) -> list[float]:
        names = set(t.column_names)
        out: list[float] = []
        if "_source_ts" in names:
            ts = _epoch_us(t["_source_ts"])
            out = [landed_at - v / 1e6 for v in pc.drop_null(ts).to_pylist()]
        if {"_tx_id", "_tx_order", "_op"} <= names:
            streamed = t.filter(pc.and_(pc.is_valid(t["_tx_id"]), pc.not_equal(t["_op"], "r")))
            counts = streamed.group_by("_tx_id").aggregate([("_tx_order", "count_distinct")])
            for tx_id, n in zip(
                counts["_tx_id"].to_pylist(),
                counts["_tx_order_count_distinct"].to_pylist(),
                strict=True,
            ):
                tx = self.pending.get(tx_id) or self.early.setdefault(tx_id, _Tx())
                tx.got[table] = tx.got.get(table, 0) + n
        return out

    def _tx_rows(self, t: pa.Table) -> None:
        ends = t.filter(pc.equal(t["status"], "END"))
        ts = _epoch_us(ends["ts"]).to_pylist()
        for raw_id, colls, commit in zip(
            ends["id"].to_pylist(), ends["data_collections"].to_pylist(), ts, strict=True
        ):
            tx_id = int(str(raw_id).split(":", 1)[0])
            tx = self.early.pop(tx_id, None) or _Tx()
            if commit is None or commit / 1e6 < self.since:
                continue
            tx.commit_ts = commit / 1e6 if commit is not None else None
            tx.expected = {
                c["data_collection"]: int(c["event_count"])
                for c in colls or []
                if c["data_collection"] in self.tables
            }
            self.pending[tx_id] = tx
        while len(self.pending) > self.max_pending:  # bounded: forget the oldest
            self.pending.popitem(last=False)
            self.dropped += 1
        if len(self.early) > self.max_pending:
            self.early.clear()

    def _release(self, now: float) -> list[float]:
        """Pop, in commit order, the transactions now whole in bronze."""
        out: list[float] = []
        while self.pending:
            tx_id, tx = next(iter(self.pending.items()))
            whole = all(tx.got.get(dc, 0) >= n for dc, n in (tx.expected or {}).items())
            if not whole:
                break
            self.pending.popitem(last=False)
            if tx.expected and tx.commit_ts is not None:
                out.append(now - tx.commit_ts)
        return out
