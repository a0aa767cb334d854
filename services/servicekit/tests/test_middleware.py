"""The request middleware, called as the server calls it (raw ASGI): the request id in the
answer and in the log context, metrics by route template, the last-resort 500, streaming
answers passed on untouched."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Message

from servicekit.config import ServiceSettings
from servicekit.context import request_id_var, user_id_var
from servicekit.errors import Conflict, install_error_handlers
from servicekit.logging import JsonFormatter
from servicekit.metrics import metrics_router
from servicekit.middleware import install_request_middleware

SERVICE = "kit-middleware"
log = logging.getLogger("servicekit.tests.middleware")


async def _chunks(fail_after_first: bool = False) -> AsyncIterator[bytes]:
    for chunk in (b"one,", b"two,", b"three"):
        yield chunk
        if fail_after_first:
            raise RuntimeError("the stream broke")


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise Conflict("item 0 is taken")
        if item_id < 0:
            raise RuntimeError("secret internals")
        return {"item": item_id}

    @router.get("/whoami")
    async def whoami() -> dict[str, str]:
        user_id_var.set("user-1")
        log.warning("who am I")
        return {"user": "user-1"}

    @router.get("/stream")
    async def stream(broken: bool = False) -> StreamingResponse:
        return StreamingResponse(_chunks(broken), media_type="text/csv")

    return router


def _app(with_middleware: bool = True) -> FastAPI:
    app = FastAPI()
    app.state.settings = ServiceSettings()
    install_error_handlers(app)
    if with_middleware:
        install_request_middleware(app, SERVICE)
    app.include_router(metrics_router())
    app.include_router(_router())
    return app


async def _call(
    app: ASGIApp,
    path: str,
    query: bytes = b"",
    request_id: str | None = None,
    sent: list[Message] | None = None,
) -> list[Message]:
    """Every message ``app`` sends for one GET of ``path`` (also into ``sent``, when given)."""
    headers = [(b"host", b"t")] + ([(b"x-request-id", request_id.encode())] if request_id else [])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("t", 80),
    }
    sent = [] if sent is None else sent

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _header(start: Message, name: bytes) -> str:
    [value] = [v for n, v in start["headers"] if n == name]
    return str(value.decode())


def _body(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def _requests(route: str, status: str) -> float:
    labels = {"service": SERVICE, "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the service would log, formatted as it is in production (at the time of the call)."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter(SERVICE))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)


def _logged(lines: io.StringIO, message: str) -> dict[str, Any]:
    [entry] = [e for e in map(orjson.loads, lines.getvalue().splitlines()) if e["message"] == message]
    return dict(entry)


async def test_the_request_id_is_echoed_and_in_the_log_context_and_only_during_the_request(
    json_log: io.StringIO,
) -> None:
    [start, _] = await _call(_app(), "/whoami", request_id="req-whoami")
    assert _header(start, b"x-request-id") == "req-whoami"
    assert _header(start, b"content-type") == "application/json"  # the app's own headers are kept
    entry = _logged(json_log, "who am I")
    assert (entry["request_id"], entry["user_id"]) == ("req-whoami", "user-1")
    assert request_id_var.get() is None and user_id_var.get() is None


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    app, item = _app(), "/items/{item_id}"
    series = [(item, "200"), (item, "409"), (item, "500"), ("unmatched", "404")]
    before = {key: _requests(*key) for key in series}
    for path in ("/items/1", "/items/2", "/items/0", "/items/-1", "/nowhere", "/metrics"):
        await _call(app, path)
    assert {key: _requests(*key) - count for key, count in before.items()} == {
        (item, "200"): 2,
        (item, "409"): 1,
        (item, "500"): 1,
        ("unmatched", "404"): 1,
    }
    assert _requests("/metrics", "200") == 0  # scrapes are not requests of the service


async def test_an_unhandled_error_is_the_json_500_logged_with_its_request_id(json_log: io.StringIO) -> None:
    [start, body] = await _call(_app(), "/items/-1", request_id="req-boom")
    assert start["status"] == 500 and _header(start, b"x-request-id") == "req-boom"
    error = orjson.loads(body["body"])["error"]
    assert error == {
        "code": "internal_error",
        "message": "An unexpected error occurred",
        "request_id": "req-boom",
    }
    entry = _logged(json_log, "unhandled error: RuntimeError")
    assert entry["request_id"] == "req-boom" and "secret internals" in entry["exc"]


async def test_a_streaming_answer_passes_through_untouched() -> None:
    bare = await _call(_app(with_middleware=False), "/stream")
    wrapped = await _call(_app(), "/stream", request_id="req-stream")
    assert [m for m in wrapped if m["type"] == "http.response.body"] == bare[1:]
    assert _body(wrapped) == b"one,two,three"
    assert wrapped[0]["headers"] == [*bare[0]["headers"], (b"x-request-id", b"req-stream")]


async def test_an_error_after_the_answer_started_is_not_answered_again_and_counts_as_500() -> None:
    before = _requests("/stream", "500")
    sent: list[Message] = []
    with pytest.raises(RuntimeError, match="the stream broke"):
        await _call(_app(), "/stream", b"broken=true", sent=sent)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and _body(sent) == b"one,"
    assert _requests("/stream", "500") == before + 1
    assert request_id_var.get() is None
