"""Helpers for silver tests: synthetic bronze rows written through the real bronze writer, and
a tiny pure-Python reference model of a captured table. Synthetic rows follow docs/design.md's
bronze columns (they are bronze rows, not Debezium messages)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from pipelines.bronze.layout import BatchId
from pipelines.bronze.writer import write_batch
from pipelines.contract import BRONZE_METADATA, UTC_US
from pipelines.naming import QualifiedName

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TABLE = QualifiedName("s", "t")
# bronze metadata columns: the lake contract's (what the decoder writes too)
METADATA = BRONZE_METADATA
TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("status", pa.string()),
        ("id", pa.string()),
        ("event_count", pa.int64()),
        (
            "data_collections",
            pa.list_(pa.struct([("data_collection", pa.string()), ("event_count", pa.int64())])),
        ),
        ("ts", pa.timestamp("ms", "UTC")),
        ("_topic", pa.string()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
        ("_kafka_ts", pa.timestamp("ms", "UTC")),
        ("_ingested_at", UTC_US),
    ]
)
SOURCE = pa.schema([("k", pa.int64()), ("a", pa.string()), ("b", pa.int64())])


# A short history through every op kind (write, TOAST placeholder, key change, truncate,
# delete): one unit (transaction) per line.
TXS = [
    [("write", 1, 0, "a1", 1), ("write", 2, 0, "b1", 2)],
    [("toast", 1, 0, None, 10), ("rekey", 2, 3, None, None)],
    [("toast", 1, 0, None, 11), ("write", 4, 0, "d", 4)],
    [("truncate", 0, 0, None, None), ("write", 5, 0, "e", 5)],
    [("write", 6, 0, "f", 6), ("delete", 5, 0, None, None)],
]


def event(**kw: object) -> dict:
    base = {f.name: None for f in SOURCE}
    base.update({f.name: None for f in METADATA})
    base.update(kw)
    return base


class Lake:
    """Writes bronze batches (data topic and transaction topic) into a lake directory."""

    def __init__(
        self,
        root: Path,
        table: QualifiedName = TABLE,
        key: list[str] | None = None,
        source: pa.Schema = SOURCE,
    ) -> None:
        self.root, self.table, self.source = root, table, source
        self.key = ["k"] if key is None else key
        self.offset = 0
        self.tx_offset = 0

    def land(self, events: list[dict], ends: list[dict] | None = None) -> None:
        if events:
            rows = []
            for e in events:
                e = dict(e, _offset=self.offset, _partition=0, _topic="cl.s.t")
                e["_kafka_ts"] = e.get("_kafka_ts") or T0
                e["_ingested_at"] = e.get("_ingested_at") or T0
                self.offset += 1
                rows.append(e)
            schema = pa.schema(list(self.source) + list(METADATA)).with_metadata(
                {"changelake.key": json.dumps(self.key)}
            )
            tbl = pa.Table.from_pylist(rows, schema=schema)
            batch = BatchId("cl.s.t", 0, rows[0]["_offset"], rows[-1]["_offset"])
            write_batch(self.root, batch, {self.table: tbl}, None, None, T0)
        if ends:
            rows = []
            for e in ends:
                rows.append(
                    dict(
                        e,
                        _topic="cl.transaction",
                        _partition=0,
                        _offset=self.tx_offset,
                        _kafka_ts=T0,
                        _ingested_at=T0,
                    )
                )
                self.tx_offset += 1
            tbl = pa.Table.from_pylist(rows, schema=TRANSACTIONS_SCHEMA)
            batch = BatchId("cl.transaction", 0, rows[0]["_offset"], rows[-1]["_offset"])
            write_batch(self.root, batch, {}, tbl, None, T0)


@dataclass
class Scenario:
    """A generated change history: the event stream, its units, and the model after each."""

    events: list[dict] = field(default_factory=list)
    unit_of: list[int] = field(default_factory=list)  # unit index of each event
    ends: dict[int, dict] = field(default_factory=dict)  # unit index -> END record
    states: list[dict] = field(default_factory=list)  # model after unit i
    times: list[datetime] = field(default_factory=list)  # commit time of unit i
    versions: dict[int, list[tuple]] = field(default_factory=dict)  # key -> (op, a, b)


def build(
    snapshot_rows: list[tuple[int, str | None, int | None]],
    txs: list[list[tuple]],
    lsn_jitter: list[int],
) -> Scenario:
    """Interpret drawn op specs against the model; invalid specs turn into valid ops or none.

    op spec: (kind, key, key2, a, b) with kind in write/toast/delete/rekey/truncate.
    """
    sc = Scenario()
    state: dict[int, tuple] = {}
    seen: set[int] = set()

    def version(k: int, op: str, a: object, b: object) -> None:
        sc.versions.setdefault(k, []).append((op, a, b))
        seen.add(k)

    if snapshot_rows:
        uniq = {k: (a, b) for k, a, b in snapshot_rows}
        n = len(uniq)
        for i, (k, (a, b)) in enumerate(sorted(uniq.items())):
            mark = "last" if i == n - 1 else ("first" if i == 0 else "true")
            sc.events.append(
                event(
                    k=k,
                    a=a,
                    b=b,
                    _op="r",
                    _source_ts=T0 - timedelta(seconds=10),
                    _lsn=9000,
                    _commit_lsn=None,
                    _snapshot=mark,
                    _unavailable=[],
                )
            )
            sc.unit_of.append(0)
            state[k] = (a, b)
            version(k, "r", a, b)
        sc.states.append(dict(state))
        sc.times.append(T0 - timedelta(seconds=10))
    for i, specs in enumerate(txs):
        unit = len(sc.states)
        commit = 10_000 + 100 * (i + 1)
        lsn = commit - 150 + lsn_jitter[i % len(lsn_jitter)]
        ts = T0 + timedelta(seconds=i)
        tx = _Tx(commit, lsn, ts, 500 + i)
        evs, emit = tx.events, tx.emit
        for kind, k, k2, a, b in specs:
            if kind == "truncate":
                emit("t", None)
                for key in seen:
                    sc.versions[key].append(("t", None, None))
                state.clear()
            elif kind == "delete" or (kind == "rekey" and (k not in state or k2 in state)):
                if k in state:
                    emit("d", k)
                    version(k, "d", None, None)
                    del state[k]
            elif kind == "rekey":
                old = state.pop(k)
                emit("d", k)
                version(k, "d", None, None)
                if a == "x":  # doc column unchanged and TOASTed: a placeholder in the create
                    emit("c", k2, None, old[1], ["a"], same_lsn=True)
                else:
                    emit("c", k2, old[0], old[1], same_lsn=True)
                version(k2, "c", old[0], old[1])
                state[k2] = old
            elif kind == "toast" and k in state:
                emit("u", k, None, b, ["a"])
                state[k] = (state[k][0], b)
                version(k, "u", state[k][0], b)
            else:
                op = "u" if k in state else "c"
                emit(op, k, a, b)
                state[k] = (a, b)
                version(k, op, a, b)
        if not evs:
            continue
        sc.events.extend(evs)
        sc.unit_of.extend([unit] * len(evs))
        sc.ends[unit] = {
            "status": "END",
            "id": f"{500 + i}:{commit}",
            "event_count": len(evs),
            "data_collections": [{"data_collection": "s.t", "event_count": len(evs)}],
            "ts": ts,
        }
        sc.states.append(dict(state))
        sc.times.append(ts)
    return sc


class _Tx:
    """Events of one transaction: increasing change LSNs that may start below earlier
    transactions' LSNs (concurrent transactions), one commit LSN and commit time."""

    def __init__(self, commit: int, lsn: int, ts: datetime, tx_id: int) -> None:
        self.commit, self.lsn, self.ts, self.tx_id = commit, lsn, ts, tx_id
        self.events: list[dict] = []

    def emit(
        self,
        op: str,
        k: int | None,
        a: object = None,
        b: object = None,
        unavailable: list[str] | None = None,
        same_lsn: bool = False,
    ) -> None:
        """``same_lsn``: the create half of a key change shares the delete's LSN."""
        self.lsn += 0 if same_lsn else 1
        self.events.append(
            event(
                k=k,
                a=a,
                b=b,
                _op=op,
                _source_ts=self.ts,
                _lsn=self.lsn,
                _commit_lsn=self.commit,
                _tx_id=self.tx_id,
                _tx_order=len(self.events) + 1,
                _snapshot="false",
                _unavailable=unavailable or [],
            )
        )


def rows_of(table: pa.Table) -> dict[int, tuple]:
    """A silver table as {k: (a, b)} (asserting keys are unique)."""
    d = table.select(["k", "a", "b"]).to_pydict()
    out = {k: (a, b) for k, a, b in zip(d["k"], d["a"], d["b"], strict=True)}
    assert len(out) == table.num_rows, "duplicate keys in silver"
    return out
