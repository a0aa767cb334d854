from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from servicekit.config import ServiceSettings
from servicekit.errors import Conflict, install_error_handlers
from servicekit.middleware import RequestContextMiddleware


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
    app.add_middleware(RequestContextMiddleware, service="kit")
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
