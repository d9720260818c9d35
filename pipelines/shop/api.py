"""The demo shop's order API: what a thin notification's consumer calls back into.

Starlette served by uvicorn on ``BIND_HOST:ORDER_API_PORT`` (``changelake up`` starts it:
``python -m pipelines.shop.api``). ``GET /orders/{id}`` and the batch ``GET /orders?ids=1,2``
each cost ONE source-database query (the rows are serialised to JSON by PostgreSQL itself);
a server-side token bucket over all clients answers 429 beyond ``ORDER_API_RATE``. ``GET
/stats`` reports requests, source-database queries and 429s, the figures the notification
benchmark reads. The rows are the columns of ``shop.orders`` (``ORDER_COLUMNS``), timestamps in
UTC, money as decimal strings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import orjson
import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.config import Settings, get_settings
from pipelines.ratelimit import TokenBucket

ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "shipping_address_id",
    "warehouse_id",
    "status",
    "total_amount",
    "currency",
    "placed_at",
    "updated_at",
)
MAX_IDS = 1000  # ids per batch request
_QUERY = (
    "SELECT coalesce(json_agg(o ORDER BY o.order_id), '[]')::text FROM ("
    "SELECT order_id, customer_id, shipping_address_id, warehouse_id, status::text AS status, "
    "total_amount::text AS total_amount, currency::text AS currency, placed_at, updated_at "
    "FROM shop.orders WHERE order_id = ANY(%s)) o"
)


@dataclass
class Stats:
    requests: int = 0
    db_queries: int = 0
    rejected_429: int = 0


class _Pool:
    """A fixed set of autocommit connections, opened on first use, reopened after a failure."""

    def __init__(self, settings: Settings, size: int) -> None:
        self._settings, self._size = settings, size
        self._free: asyncio.Queue[psycopg.AsyncConnection | None] | None = None

    async def query(self, ids: list[int]) -> str:
        if self._free is None:
            self._free = asyncio.Queue()
            for _ in range(self._size):
                self._free.put_nowait(None)
        conn = await self._free.get()
        try:
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self._settings.pg_dsn(), autocommit=True, options="-c TimeZone=UTC"
                )
            cur = await conn.execute(_QUERY, (ids,))
            (text,) = await cur.fetchone()
            return text
        except psycopg.OperationalError:
            if conn is not None:
                await conn.close()
            conn = None
            raise
        finally:
            self._free.put_nowait(conn)


def _ids(raw: str) -> list[int]:
    ids = [int(x) for x in raw.split(",") if x.strip()]
    if not ids or len(ids) > MAX_IDS:
        raise ValueError(f"ids: 1 to {MAX_IDS} comma-separated integers")
    return ids


def build_app(settings: Settings) -> Starlette:
    stats = Stats()
    bucket = TokenBucket(settings.order_api_rate, settings.order_api_burst)
    pool = _Pool(settings, settings.order_api_db_connections)

    async def lookup(ids: list[int]) -> bytes:
        stats.db_queries += 1
        return (await pool.query(ids)).encode()

    def limited() -> Response | None:
        stats.requests += 1
        wait = bucket.try_take()
        if wait <= 0:
            return None
        stats.rejected_429 += 1
        return JSONResponse(
            {"error": "rate limited", "retry_after_s": round(wait, 4)},
            status_code=429,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    async def one(request: Request) -> Response:
        if (busy := limited()) is not None:
            return busy
        rows = orjson.loads(await lookup([request.path_params["order_id"]]))
        if not rows:
            return JSONResponse({"error": "no such order"}, status_code=404)
        return Response(orjson.dumps(rows[0]), media_type="application/json")

    async def many(request: Request) -> Response:
        try:
            ids = _ids(request.query_params.get("ids", ""))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if (busy := limited()) is not None:
            return busy
        body = b'{"orders":' + await lookup(ids) + b"}"
        return Response(body, media_type="application/json")

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def get_stats(_: Request) -> Response:
        return JSONResponse(asdict(stats))

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/stats", get_stats),
            Route("/orders", many),
            Route("/orders/{order_id:int}", one),
        ]
    )


@contextlib.contextmanager
def serving(settings: Settings, port: int = 0) -> Iterator[str]:
    """Serve the API in this process (a uvicorn thread) on BIND_HOST; yield its base URL.
    ``port`` 0: a free one. For tests and the benchmark; ``up`` runs it as its own process."""
    import uvicorn

    config = uvicorn.Config(
        build_app(settings),
        host=settings.bind_host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="order-api", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("order API did not start (see the log above)")
            thread.join(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{settings.bind_host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """``python -m pipelines.shop.api --pidfile PATH``: serve until SIGTERM (the pid file path
    is the marker ``down`` checks the command line for)."""
    import uvicorn

    ap = argparse.ArgumentParser(prog="python -m pipelines.shop.api")
    ap.add_argument("--pidfile", required=True)
    ap.parse_args(argv)
    settings = get_settings()
    uvicorn.run(
        build_app(settings),
        host=settings.bind_host,
        port=settings.order_api_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
