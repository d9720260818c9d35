"""Synthetic change events with EXACTLY the real connector's shape, from recorded real messages.

``bench/templates/bench_events.jsonl`` holds messages recorded from the real Debezium connector
(``python -m bench.record``). Every synthetic message reuses a recorded message's schema bytes
verbatim and a copy of its payload in which only values change, consistently:

* transaction k (``tx_size`` events) gets txId ``TX0 + k``, one commit time, a ``lastCommitLsn``
  (``source.sequence[0]``) that grows with k, per-event LSNs above it, ``transaction.id`` =
  ``txId:lsn``, ``total_order`` = ``data_collection_order`` = position; the transaction topic gets a
  BEGIN and an END (with ``event_count`` and ``data_collections``) shaped like the recorded ones;
* event i touches key ``i % keys``: a create the first time, then updates; with ``delete_every``
  some updates are deletes (before-image, ``after`` null, then a tombstone) and the key's next
  event is a create again;
* Kafka offsets are consecutive per topic (tombstones included), Kafka timestamps follow commit
  times.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipelines.decode import RawMessage

TEMPLATES = Path(__file__).resolve().parent / "templates" / "bench_events.jsonl"
STATUSES = ("new", "paid", "packed", "shipped", "delivered", "returned")
_CUT = b',"payload":'


def _split(raw: str) -> tuple[bytes, dict]:
    b = raw.encode()
    cut = b.index(_CUT)
    return b[: cut + len(_CUT)], orjson.loads(b[cut + len(_CUT) : -1])


def _decimal_bytes(unscaled: int) -> str:
    """Connect Decimal: big-endian two's complement, minimal length, base64 (as recorded)."""
    n = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(n, "big", signed=True)).decode()


@dataclass
class Templates:
    """The recorded messages the generator varies (one per kind)."""

    table_topic: str
    tx_topic: str
    value_head: dict[str, bytes]  # op -> b'{"schema":...,"payload":'
    payload: dict[str, dict]  # op -> recorded payload
    key_head: bytes
    tx_value_head: dict[str, bytes]
    tx_payload: dict[str, dict]
    tx_key_head: bytes

    @classmethod
    def load(cls, path: Path = TEMPLATES) -> Templates:
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        value_head, payload, tx_head, tx_payload = {}, {}, {}, {}
        key_head = tx_key_head = b""
        table_topic = tx_topic = ""
        for r in rows:
            if r["value"] is None:
                continue
            head, body = _split(r["value"])
            khead, _ = _split(r["key"])
            if "op" in body:
                if body["source"]["table"] != "events":
                    continue
                table_topic, key_head = r["topic"], khead
                value_head.setdefault(body["op"], head)
                payload.setdefault(body["op"], body)
            elif body.get("status") in ("BEGIN", "END"):
                dcs = body.get("data_collections") or []
                if body["status"] == "END" and not any(
                    d["data_collection"] == "bench.events" for d in dcs
                ):
                    continue
                tx_topic, tx_key_head = r["topic"], khead
                tx_head.setdefault(body["status"], head)
                tx_payload.setdefault(body["status"], body)
        missing = {"c", "u", "d"} - set(payload) | {"BEGIN", "END"} - set(tx_payload)
        if missing:
            raise ValueError(f"{path}: no recorded template for {sorted(missing)}; re-record")
        return cls(
            table_topic, tx_topic, value_head, payload, key_head, tx_head, tx_payload, tx_key_head
        )


@dataclass
class Chunk:
    """Messages of events [first, last] for both topics, in offset order."""

    table: list[RawMessage]
    tx: list[RawMessage]
    events: int


class Generator:
    """Deterministic event stream; ``chunk(i0, n)`` yields events i0..i0+n-1 (tx-aligned)."""

    def __init__(
        self,
        templates: Templates | None = None,
        *,
        keys: int = 1_000_000,
        tx_size: int = 5,
        delete_every: int = 0,
        start: datetime | None = None,
        tx_interval_us: int = 1000,
        lsn0: int = 30_000_000,
        tx0: int = 10_000,
    ) -> None:
        self.t = templates or Templates.load()
        self.keys, self.tx_size, self.delete_every = keys, tx_size, delete_every
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.ts0 = int(start.timestamp() * 1_000_000)
        self.tx_interval_us, self.lsn0, self.tx0 = tx_interval_us, lsn0, tx0

    # -- deterministic facts of event i / transaction k ---------------------------------
    def _is_delete(self, i: int) -> bool:
        return (
            bool(self.delete_every) and i >= self.keys and (i * 2654435761) % self.delete_every == 0
        )

    def op(self, i: int) -> str:
        if i < self.keys or self._is_delete(i - self.keys):
            return "c"
        return "d" if self._is_delete(i) else "u"

    def commit_lsn(self, k: int) -> int:
        return self.lsn0 + k * (self.tx_size * 272 + 400)

    def lsn(self, i: int) -> int:
        k, j = divmod(i, self.tx_size)
        return self.commit_lsn(k) + 56 + j * 272

    def commit_us(self, k: int) -> int:
        return self.ts0 + k * self.tx_interval_us

    def table_offset(self, i: int) -> int:
        """Offset of event i's message: deletes before i each added a tombstone."""
        if not self.delete_every:
            return i
        # deletes are rare; counting them is exact and cheap compared to producing messages
        return i + sum(1 for x in range(self.keys, i) if self._is_delete(x))

    # -- messages -----------------------------------------------------------------------
    def _row(self, i: int, key: int, ts_iso: str) -> dict:
        h = (i * 2654435761) & 0xFFFFFFFF
        return {
            "id": key,
            "customer_id": h % 50_000,
            "status": STATUSES[h % len(STATUSES)],
            "amount": _decimal_bytes(h % 1_000_000),
            "quantity": h % 20,
            "note": None if h % 7 == 0 else f"note {h % 997}",
            "is_paid": bool(h & 1),
            "created_at": ts_iso,
            "updated_at": ts_iso,
        }

    def _event(
        self, i: int, k: int, j: int, commit_us: int, offset: int, ts_iso: str
    ) -> RawMessage:
        op = self.op(i)
        key = i % self.keys
        tmpl = self.t.payload[op]
        p = copy.copy(tmpl)
        lsn = self.lsn(i)
        src = dict(tmpl["source"])
        src.update(
            ts_ms=commit_us // 1000,
            ts_us=commit_us,
            ts_ns=commit_us * 1000,
            txId=self.tx0 + k,
            lsn=lsn,
            sequence=f'["{self.commit_lsn(k)}","{lsn}"]',
        )
        p["source"] = src
        p["transaction"] = {
            "id": f"{self.tx0 + k}:{lsn}",
            "total_order": j + 1,
            "data_collection_order": j + 1,
        }
        proc_us = commit_us + 150_000
        p.update(ts_ms=proc_us // 1000, ts_us=proc_us, ts_ns=proc_us * 1000)
        if op == "d":
            before = dict(tmpl["before"])
            before["id"] = key
            p["before"], p["after"] = before, None
        else:
            p["before"], p["after"] = None, self._row(i, key, ts_iso)
        value = self.t.value_head[op] + orjson.dumps(p) + b"}"
        kbytes = self.t.key_head + b'{"id":' + str(key).encode() + b"}}"
        return RawMessage(self.t.table_topic, 0, offset, proc_us // 1000 + 50, kbytes, value)

    def _tx(self, status: str, k: int, n: int, offset: int, commit_us: int) -> RawMessage:
        p = dict(self.t.tx_payload[status])
        first_lsn = self.lsn(k * self.tx_size)
        tid = f"{self.tx0 + k}:{first_lsn if status == 'BEGIN' else self.commit_lsn(k + 1)}"
        p.update(id=tid, ts_ms=commit_us // 1000)
        if status == "END":
            p["event_count"] = n
            p["data_collections"] = [{"data_collection": "bench.events", "event_count": n}]
        value = self.t.tx_value_head[status] + orjson.dumps(p) + b"}"
        kbytes = self.t.tx_key_head + orjson.dumps({"id": tid}) + b"}"
        return RawMessage(self.t.tx_topic, 0, offset, commit_us // 1000 + 200, kbytes, value)

    def chunk(self, first: int, n: int) -> Chunk:
        """Events first..first+n-1 (first and n multiples of tx_size) with their BEGIN/END."""
        if first % self.tx_size or n % self.tx_size:
            raise ValueError("chunks must be whole transactions")
        table: list[RawMessage] = []
        tx: list[RawMessage] = []
        off = self.table_offset(first)
        for k in range(first // self.tx_size, (first + n) // self.tx_size):
            commit_us = self.commit_us(k)
            ts_iso = datetime.fromtimestamp(commit_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            tx.append(self._tx("BEGIN", k, self.tx_size, 2 * k, commit_us))
            for j in range(self.tx_size):
                i = k * self.tx_size + j
                msg = self._event(i, k, j, commit_us, off, ts_iso)
                table.append(msg)
                off += 1
                if self.op(i) == "d":
                    table.append(RawMessage(msg.topic, 0, off, msg.timestamp_ms, msg.key, None))
                    off += 1
            tx.append(self._tx("END", k, self.tx_size, 2 * k + 1, commit_us))
        return Chunk(table, tx, n)

    def chunks(self, total: int, size: int = 50_000) -> Iterator[Chunk]:
        size -= size % self.tx_size
        total -= total % self.tx_size
        for first in range(0, total, size):
            yield self.chunk(first, min(size, total - first))
