"""Pure ASGI middleware: request id in and out, and per-route metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.context import request_id_var, user_id_var
from servicekit.errors import unexpected_error
from servicekit.metrics import HTTP_LATENCY, HTTP_REQUESTS

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's well-formed X-Request-ID (lower-case header names, as ASGI gives them), or a new id."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Accepts or makes an X-Request-ID, echoes it, and records latency by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope.get("headers", ()))
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        status = 500
        began = time.perf_counter()
        answering = False  # the response has started: a late exception cannot answer any more

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                answering = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here, inside the request's context, so the 500 carries its request id.
            status = 500
            if answering:
                raise
            await unexpected_error(exc)(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            if route not in ("/metrics",):
                method = scope["method"]
                HTTP_LATENCY.labels(self.service, method, route).observe(time.perf_counter() - began)
                HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)
