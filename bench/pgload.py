"""pgbench against the private stack's PostgreSQL: a custom script inserting into bench.events.

``start(settings, seconds, rate=None, clients=2)`` runs /usr/lib/postgresql/15/bin/pgbench (or the
first pgbench on PATH) as a child process; ``finish`` waits and parses the committed tps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipelines.config import Settings
from pipelines.naming import QualifiedName
from pipelines.stack.postgres import app_connect

EVENTS = QualifiedName("bench", "events")

PGBENCH_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)

SCRIPT = """\\set c random(1, 50000)
\\set q random(1, 20)
INSERT INTO {table} (id, customer_id, status, amount, quantity, note, is_paid, updated_at)
VALUES (nextval('bench.events_bench_seq'), :c, 'new', :q * 3.25, :q, 'pgbench', false, now());
"""


def pgbench() -> str:
    for d in PGBENCH_DIRS:
        p = Path(d) / "pgbench"
        if p.exists():
            return str(p)
    found = shutil.which("pgbench")
    if not found:
        raise FileNotFoundError("pgbench not found (install postgresql-15 / postgresql-contrib)")
    return found


def prepare(settings: Settings) -> None:
    with app_connect(settings) as conn:
        conn.autocommit = True
        conn.execute("CREATE SEQUENCE IF NOT EXISTS bench.events_bench_seq START 1000000000")


BATCH_SCRIPT = """\\set c random(1, 50000)
INSERT INTO {table} (id, customer_id, status, amount, quantity, note, is_paid, updated_at)
SELECT nextval('bench.events_bench_seq'), :c, 'new', g * 3.25, g % 20, 'pgbench', false, now()
FROM generate_series(1, {rows}) g;
"""


def start(
    settings: Settings,
    seconds: int,
    *,
    rate: int | None = None,
    clients: int = 2,
    rows_per_tx: int = 1,
    table: QualifiedName = EVENTS,
) -> subprocess.Popen:
    """Start pgbench for ``seconds`` (optionally rate-limited to ``rate`` tx/s in total)."""
    prepare(settings)
    script = Path(tempfile.mkdtemp(prefix="bench-pgbench-")) / "insert.sql"
    text = SCRIPT if rows_per_tx == 1 else BATCH_SCRIPT
    script.write_text(text.format(rows=rows_per_tx, table=table.sql))
    argv = [
        pgbench(),
        "-n",
        "-h",
        settings.pg_host,
        "-p",
        str(settings.pg_port),
        "-U",
        settings.pg_user,
        "-c",
        str(clients),
        "-j",
        "1",
        "-T",
        str(seconds),
        "-f",
        str(script),
        settings.pg_database,
    ]
    if rate:
        argv[1:1] = ["-R", str(rate)]
    env = {**os.environ, "PGPASSWORD": settings.pg_password}
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> dict[str, float]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{out[-2000:]}")
    tx = re.search(r"number of transactions actually processed: (\d+)", out)
    tps = re.search(r"tps = ([\d.]+)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {
        "transactions": int(tx.group(1)) if tx else 0,
        "tps": float(tps.group(1)) if tps else 0.0,
        "latency_avg_ms": float(lat.group(1)) if lat else 0.0,
    }
