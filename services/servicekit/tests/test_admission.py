"""The admission limit: at most N requests run at once, the rest queue (FIFO) or get a 503."""

from __future__ import annotations

import asyncio
from functools import partial

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from servicekit.admission import AdmissionLimit
from servicekit.app import ServiceSpec, build_app
from servicekit.config import ServiceSettings
from servicekit.errors import install_error_handlers
from servicekit.middleware import RequestContextMiddleware, install_request_middleware
from servicekit.testing.helpers import wait_until


class Gate:
    """A handler's body that records how many run at once and waits until opened."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.opened = asyncio.Event()
        self.changed = asyncio.Condition()

    async def enter(self, number: int) -> None:
        async with self.changed:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(number)
            self.changed.notify_all()
        try:
            await self.opened.wait()
        finally:
            self.running -= 1

    async def until_running(self, count: int) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(lambda: self.running == count)


def _app(gate: Gate, limit: int, timeout_seconds: float = 5.0) -> FastAPI:
    router = APIRouter()

    @router.get("/work/{number}")
    async def work(number: int) -> dict[str, int]:
        await gate.enter(number)
        return {"number": number}

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(AdmissionLimit, service="admit", limit=limit, timeout_seconds=timeout_seconds)
    install_request_middleware(app, "admit")
    app.include_router(router)
    return app


async def _waiting(count: int) -> bool:
    return REGISTRY.get_sample_value("http_requests_waiting_for_admission", {"service": "admit"}) == count


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admit")


async def test_at_most_the_limit_run_at_once_and_the_rest_run_in_arrival_order() -> None:
    gate = Gate()
    async with _client(_app(gate, limit=2)) as api:
        first = [asyncio.create_task(api.get(f"/work/{n}")) for n in (0, 1)]
        await gate.until_running(2)
        queued = []
        for n in range(2, 6):  # one at a time, so their order of arrival is known
            queued.append(asyncio.create_task(api.get(f"/work/{n}")))
            await wait_until(partial(_waiting, len(queued)), within=5, interval=0.002, what="queued")
        assert gate.running == 2 and gate.started == [0, 1]
        gate.opened.set()
        answers = await asyncio.gather(*first, *queued)
    assert [answer.status_code for answer in answers] == [200] * 6
    assert gate.most == 2
    assert gate.started[2:] == [2, 3, 4, 5]


async def test_a_request_that_waits_too_long_is_a_json_503_with_retry_after() -> None:
    gate = Gate()
    refused = REGISTRY.get_sample_value("http_requests_refused_overloaded_total", {"service": "admit"}) or 0
    async with _client(_app(gate, limit=1, timeout_seconds=0.1)) as api:
        holder = asyncio.create_task(api.get("/work/1"))
        await gate.until_running(1)
        answer = await api.get("/work/2", headers={"X-Request-ID": "overload-1"})
        gate.opened.set()
        assert (await holder).status_code == 200
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.headers["x-request-id"] == "overload-1"
    assert answer.json()["error"] == {
        "code": "service_overloaded",
        "message": "Too many requests are in progress; retry shortly",
        "request_id": "overload-1",
    }
    after = REGISTRY.get_sample_value("http_requests_refused_overloaded_total", {"service": "admit"})
    assert after == refused + 1
    assert REGISTRY.get_sample_value("http_requests_waiting_for_admission", {"service": "admit"}) == 0


async def test_health_is_never_held_back_and_a_limit_of_zero_is_off() -> None:
    gate = Gate()
    async with _client(_app(gate, limit=1, timeout_seconds=0.1)) as api:
        holder = asyncio.create_task(api.get("/work/1"))
        await gate.until_running(1)
        assert (await api.get("/health")).status_code == 200
        gate.opened.set()
        await holder
    unlimited = Gate()
    async with _client(_app(unlimited, limit=0)) as api:
        tasks = [asyncio.create_task(api.get(f"/work/{n}")) for n in range(20)]
        await unlimited.until_running(20)
        unlimited.opened.set()
        assert {answer.status_code for answer in await asyncio.gather(*tasks)} == {200}


def test_every_service_queues_inside_the_request_context() -> None:
    """The 503 and the time spent queued carry the request id and count in the latency metric."""
    spec = ServiceSpec(title="admit", description="queues", routers=[], uses_broker=False)
    app = build_app(ServiceSettings(max_concurrent_requests=3), spec)
    layers = [middleware.cls for middleware in app.user_middleware]
    assert layers.index(RequestContextMiddleware) < layers.index(AdmissionLimit)  # outer first
    [admission] = [m for m in app.user_middleware if m.cls is AdmissionLimit]
    assert admission.kwargs["limit"] == 3


def test_openapi_lists_the_overload_503_on_every_operation_it_can_refuse() -> None:
    router = APIRouter()

    @router.get("/things")
    async def things() -> list[int]:
        return []

    spec = ServiceSpec(title="admit", description="documents", routers=[router], uses_broker=False)
    paths = build_app(ServiceSettings(max_concurrent_requests=3), spec).openapi()["paths"]
    listed = paths["/things"]["get"]["responses"]["503"]
    assert "service_overloaded" in listed["description"]
    assert listed["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    health = paths["/health"]["get"]["responses"]["503"]  # its own: a dependency down
    assert "overloaded" not in health["description"]  # probes are never held back
    unlimited = build_app(ServiceSettings(max_concurrent_requests=0), spec).openapi()["paths"]
    assert "503" not in unlimited["/things"]["get"]["responses"]
