"""The issue's yardstick, measured here: a FastAPI endpoint doing one PostgreSQL query and one
Redis command (issue 4 assumes "about 2.7k req/s" on a 2-core machine), and a bare one.

    .venv/bin/python scripts/benchmark/reference_endpoint.py &    # 127.0.0.1:38099
    wrk -t2 -c64 -d5s http://127.0.0.1:38099/query   # one SELECT + one Redis GET
    wrk -t2 -c64 -d5s http://127.0.0.1:38099/bare    # nothing

Same server settings as the services (uvicorn, uvloop, httptools, no access log). Uses the
machine's PostgreSQL (database postgres, 16 connections) and Redis (key bench:reference);
listens on 127.0.0.1 ``--port`` (default 38099) and stops after ``--seconds`` (default 120).
scripts/benchmark starts it itself on a free port for its yardstick scenario (yardstick.py).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


class Clients:
    """The endpoint's pools, opened by the lifespan."""

    pg: asyncpg.Pool
    redis: Redis


clients = Clients()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    clients.pg = await asyncpg.create_pool(  # named: floor.py counts its backends' CPU
        PG_DSN, min_size=16, max_size=16, server_settings={"application_name": "mb-reference"}
    )
    clients.redis = Redis.from_url(REDIS_URL, max_connections=64)
    yield
    await clients.pg.close()
    await clients.redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/bare")
async def bare() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/query")
async def query() -> dict[str, object]:
    value = await clients.pg.fetchval("SELECT 1")
    cached = await clients.redis.get("bench:reference")
    return {"value": value, "cached": cached}


async def main(port: int, seconds: float) -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await asyncio.sleep(seconds)
    server.should_exit = True
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=38099)
    parser.add_argument("--seconds", type=float, default=120.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.seconds))
