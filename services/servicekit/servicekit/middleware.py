"""The request's pure-ASGI middleware, one job each; ``install_request_middleware`` stacks them.

Outermost first: ``RequestContextMiddleware`` (the X-Request-ID and the log context),
``RequestMetricsMiddleware`` (latency and count by route template), ``InternalErrorMiddleware``
(the JSON 500 for an exception nothing answered). The 500 is answered inside the other two,
so it carries the request id and is counted.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.context import request_id_var, user_id_var
from servicekit.errors import unexpected_error
from servicekit.metrics import HTTP_LATENCY, HTTP_REQUESTS

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_START = "http.response.start"


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's well-formed X-Request-ID (lower-case header names, as ASGI gives them), or a new id."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def install_request_middleware(app: Starlette, service: str) -> None:
    """Add the three, so that they run in the order this module lists them."""
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(RequestMetricsMiddleware, service=service)
    app.add_middleware(RequestContextMiddleware)


class _HttpMiddleware(ABC):
    """Pure ASGI middleware that acts on HTTP requests; other scopes (lifespan) pass it by."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The middleware's work on one HTTP request."""


class RequestContextMiddleware(_HttpMiddleware):
    """Accepts or makes an X-Request-ID, echoes it, and sets the log context for the request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = incoming_request_id(scope.get("headers", ()))
        echoed = (b"x-request-id", request_id.encode())
        rid_token, uid_token = request_id_var.set(request_id), user_id_var.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == _START:
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestMetricsMiddleware(_HttpMiddleware):
    """Observes each request's latency and counts it by route template, method and status
    (500 when it raised); /metrics scrapes are left out."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        super().__init__(app)
        self.service = service
        # ``labels()`` validates and locks on every call (a few µs each): each series is looked
        # up once. They are as many as the registry keeps anyway (route templates, the methods
        # uvicorn's parser knows, statuses).
        self._series: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        began = time.perf_counter()

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == _START:
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            status = 500
            raise
        finally:
            self._record(scope, status, time.perf_counter() - began)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        if route == "/metrics":
            return
        key = (scope["method"], route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._labelled(*key)
        latency, requests = series
        latency.observe(seconds)
        requests.inc()

    def _labelled(self, method: str, route: str, status: int) -> tuple[Histogram, Counter]:
        latency = HTTP_LATENCY.labels(self.service, method, route)
        return latency, HTTP_REQUESTS.labels(self.service, method, route, str(status))


class InternalErrorMiddleware(_HttpMiddleware):
    """The last resort: an exception no handler answered becomes the JSON 500, unless the
    response has started (then nothing can answer any more, and it goes on up).

    Starlette's own ``Exception`` handler would answer outside every middleware, after the
    request's context (and so its request id) is gone.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        answering = False

        async def send_noting_start(message: Message) -> None:
            nonlocal answering
            answering = answering or message["type"] == _START
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:
            if answering:
                raise
            await unexpected_error(exc)(scope, receive, send)
