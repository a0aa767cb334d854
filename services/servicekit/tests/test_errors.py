from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicekit.config import ServiceSettings
from servicekit.errors import Conflict, install_error_handlers
from servicekit.middleware import install_request_middleware
from servicekit.testing.helpers import database_url


class Body(BaseModel):
    count: int


def _app() -> FastAPI:
    router = APIRouter()

    @router.post("/things")
    async def things(body: Body) -> dict[str, Any]:
        return {"count": body.count}

    @router.get("/conflict")
    async def conflict() -> None:
        raise Conflict("seat taken", details=["A1"])

    @router.get("/pool")
    async def pool() -> None:
        raise PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached")

    @router.get("/redis")
    async def redis_down() -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app = FastAPI()
    app.state.settings = ServiceSettings()
    install_error_handlers(app)
    install_request_middleware(app, "kit")
    app.include_router(router)
    return app


async def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_every_error_has_the_one_shape() -> None:
    async with await _client() as client:
        answers = [
            await client.post("/things", json={"count": "many"}),
            await client.post("/things", content=b"{", headers={"content-type": "application/json"}),
            await client.get("/conflict"),
            await client.get("/missing"),
            await client.delete("/conflict"),
        ]
    assert [a.status_code for a in answers] == [422, 422, 409, 404, 405]
    for answer in answers:
        error = answer.json()["error"]
        assert set(error) >= {"code", "message", "request_id"}
        assert error["request_id"] == answer.headers["x-request-id"]
    assert answers[2].json()["error"]["details"] == ["A1"]


async def test_unexpected_errors_are_500_without_internals() -> None:
    async with await _client() as client:
        answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.json()["error"]["request_id"] == answer.headers["x-request-id"]
    assert "hunter2" not in answer.text and "RuntimeError" not in answer.text


async def test_a_saturated_or_unreachable_dependency_is_a_503_to_retry() -> None:
    async with await _client() as client:
        answers = [await client.get("/pool"), await client.get("/redis")]
    for answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "service_unavailable"
        assert "QueuePool" not in answer.text and "6379" not in answer.text


async def test_latency_is_the_request_s_own_duration() -> None:
    """The histogram observes how long the request took (not the clock's reading since boot)."""
    labels = {"service": "kit", "method": "GET", "route": "/conflict"}

    def observed() -> tuple[float, float]:
        total = REGISTRY.get_sample_value("http_request_duration_seconds_sum", labels) or 0.0
        count = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0
        return total, count

    async with await _client() as client:
        before, count_before = observed()
        began = time.perf_counter()
        await client.get("/conflict")
        took = time.perf_counter() - began
        after, count_after = observed()
    assert count_after == count_before + 1
    assert 0 < after - before <= took


@contextlib.asynccontextmanager
async def refusing_postgres(sqlstate: str, message: str) -> AsyncIterator[int]:
    """A port answering every connection as a PostgreSQL server that refuses it: after the
    startup message (an SSL request first is declined), a FATAL ErrorResponse, then close."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await _read_startup_message(reader)
        if body[:4] == SSL_REQUEST:
            writer.write(b"N")
            await _read_startup_message(reader)
        fields = b"".join(
            code + value.encode() + b"\0"
            for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
        )
        writer.write(b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


SSL_REQUEST = struct.pack("!I", 80877103)


async def _read_startup_message(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return await reader.readexactly(length - 4)


def _db_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_request_middleware(app, "kit")

    @app.get("/db")
    async def query() -> dict[str, int]:
        async with engine.connect() as connection:
            return {"one": int(await connection.scalar(text("SELECT 1")) or 0)}

    return app


async def _get_db(engine: AsyncEngine) -> httpx.Response:
    transport = httpx.ASGITransport(app=_db_app(engine), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/db")


@pytest.mark.parametrize(
    ("sqlstate", "message", "status"),
    [
        ("53300", "sorry, too many clients already", 503),
        ("57P03", "the database system is starting up", 503),
        ("28P01", 'password authentication failed for user "kit"', 500),  # misconfigured: stays loud
    ],
)
async def test_postgresql_refusing_connections_is_a_503_to_retry(
    sqlstate: str, message: str, status: int
) -> None:
    async with refusing_postgres(sqlstate, message) as port:
        engine = create_async_engine(f"postgresql+asyncpg://kit:secret@127.0.0.1:{port}/kit")
        try:
            answer = await _get_db(engine)
        finally:
            await engine.dispose()
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["request_id"] == answer.headers["x-request-id"] and message not in answer.text
    if status == 503:
        assert error["code"] == "service_unavailable" and answer.headers["retry-after"] == "1"


async def test_a_pool_with_no_free_connection_is_a_503_to_retry() -> None:
    engine = create_async_engine(database_url("postgres"), pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with engine.connect() as held:  # the only connection
            await held.execute(text("SELECT 1"))
            answer = await _get_db(engine)
        assert (await _get_db(engine)).json() == {"one": 1}  # and fine once it is back
    finally:
        await engine.dispose()
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "service_unavailable" and "QueuePool" not in answer.text
