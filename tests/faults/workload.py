"""A small concurrent write workload for the fault suite: psycopg threads running
multi-statement transactions against the captured test tables while faults are injected.

It survives a PostgreSQL restart (reconnects with backoff) and adapts to the schema changes the
suite makes mid-stream (flags set by the test: ``tagged`` after ADD COLUMN, ``wide`` after the
int->bigint ALTER, ``late`` once the late table is captured). The final PostgreSQL state, not a
log of what the workload did, is the truth silver is compared against.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg

from pipelines.naming import QualifiedName, quote_ident

N_ACCOUNTS = 40


@dataclass(frozen=True)
class Tables:
    """The suite's tables in one PostgreSQL schema (one schema per lake format, so two chaos
    runs in one session never share tables or topics)."""

    schema: str = "faults"

    @property
    def accounts(self) -> QualifiedName:
        return QualifiedName(self.schema, "accounts")

    @property
    def ledger(self) -> QualifiedName:
        return QualifiedName(self.schema, "ledger")

    @property
    def late(self) -> QualifiedName:
        return QualifiedName(self.schema, "late")

    @property
    def ddl(self) -> str:
        a, led = self.accounts.sql, self.ledger.sql
        return f"""
CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)};
DROP TABLE IF EXISTS {a}, {led}, {self.late.sql};
CREATE TABLE {a} (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0,
                  note text DEFAULT 'n', touched timestamptz DEFAULT now());
CREATE TABLE {led} (id bigserial PRIMARY KEY, account_id int NOT NULL, amount int, memo text);
"""

    @property
    def late_ddl(self) -> str:
        return f"CREATE TABLE {self.late.sql} (k text PRIMARY KEY, n int, payload jsonb);"


@dataclass
class Flags:
    tagged: bool = False
    wide: bool = False
    late: bool = False


@dataclass
class Stats:
    commits: int = 0
    rollbacks: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


class Workload:
    """``threads`` writers until ``stop()``; ``pause()``/``resume()`` around DDL if wanted."""

    def __init__(
        self,
        dsn: str,
        tables: Tables,
        *,
        threads: int = 3,
        pace_s: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.dsn, self.tables = dsn, tables
        self.flags = Flags()
        self.stats = Stats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i, pace_s, seed + i), daemon=True)
            for i in range(threads)
        ]

    def seed_rows(self) -> None:
        t = self.tables
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {t.accounts.sql} (id, balance) "  # noqa: S608
                "SELECT g, 0 FROM generate_series(1, %s) g",
                (N_ACCOUNTS,),
            )

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> Stats:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        return self.stats

    def _connect(self) -> psycopg.Connection:
        delay = 0.2
        while not self._stop.is_set():
            try:
                return psycopg.connect(self.dsn, connect_timeout=5)
            except psycopg.OperationalError:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise _Stopped

    def _run(self, n: int, pace: float, seed: int) -> None:
        rnd = random.Random(seed)
        conn = None
        try:
            while not self._stop.is_set():
                if conn is None or conn.closed:
                    conn = self._connect()
                try:
                    with conn.transaction():
                        self._one_tx(conn, rnd, n)
                    with self._lock:
                        self.stats.commits += 1
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    with self._lock:
                        self.stats.reconnects += 1
                    conn = None
                except psycopg.errors.DeadlockDetected:
                    with self._lock:
                        self.stats.rollbacks += 1
                except psycopg.Error as exc:  # anything else is a bug in the suite: record it
                    with self._lock:
                        self.stats.rollbacks += 1
                        self.stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                time.sleep(pace * rnd.uniform(0.5, 1.5))
        except _Stopped:
            pass
        finally:
            if conn is not None and not conn.closed:
                conn.close()

    def _one_tx(self, conn: psycopg.Connection, rnd: random.Random, n: int) -> None:
        """One multi-statement transaction touching one or more tables."""
        t = self.tables
        acc = rnd.randint(1, N_ACCOUNTS)
        amount = rnd.randint(-500, 500)
        if self.flags.wide:
            amount += rnd.choice((0, 3_000_000_000, -3_000_000_000))  # needs bigint
        roll = rnd.random()
        if roll < 0.7:
            conn.execute(
                f"INSERT INTO {t.ledger.sql} (account_id, amount, memo) VALUES (%s, %s, %s)",  # noqa: S608
                (acc, amount, f"w{n} {rnd.random():.6f}"),
            )
            sets = "balance = balance + %s, touched = now()"
            params: list = [max(min(amount, 1000), -1000)]
            if self.flags.tagged:
                sets += ", tag = %s"
                params.append(f"t{rnd.randint(0, 9)}")
            conn.execute(
                f"UPDATE {t.accounts.sql} SET {sets} WHERE id = %s",  # noqa: S608
                (*params, acc),
            )
        elif roll < 0.8:
            conn.execute(f"DELETE FROM {t.accounts.sql} WHERE id = %s", (acc,))  # noqa: S608
            conn.execute(
                f"INSERT INTO {t.accounts.sql} (id, balance) VALUES (%s, %s) "  # noqa: S608
                "ON CONFLICT (id) DO NOTHING",
                (acc, rnd.randint(0, 100)),
            )
        elif roll < 0.9:
            conn.execute(
                f"DELETE FROM {t.ledger.sql} WHERE id IN (SELECT id FROM {t.ledger.sql} "  # noqa: S608
                "WHERE account_id = %s ORDER BY id LIMIT 2)",
                (acc,),
            )
        else:
            conn.execute(
                f"UPDATE {t.ledger.sql} SET memo = memo || '+' WHERE id IN "  # noqa: S608
                f"(SELECT id FROM {t.ledger.sql} WHERE account_id = %s ORDER BY id DESC LIMIT 3)",
                (acc,),
            )
        if self.flags.late and rnd.random() < 0.5:
            k = f"k{rnd.randint(0, 60)}"
            conn.execute(
                f"INSERT INTO {t.late.sql} (k, n, payload) VALUES (%s, 1, %s) "  # noqa: S608
                f"ON CONFLICT (k) DO UPDATE SET n = {t.late.sql}.n + 1, payload = EXCLUDED.payload",
                (k, psycopg.types.json.Jsonb({"k": k, "r": rnd.random()})),
            )
            if rnd.random() < 0.1:
                conn.execute(f"DELETE FROM {t.late.sql} WHERE k = %s", (k,))  # noqa: S608


class _Stopped(Exception):
    pass
