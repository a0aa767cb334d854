"""uvicorn's own 400 (a request its parser refuses) is the one JSON error shape, with the request id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from servicekit.protocol import JsonErrorHttpToolsProtocol
from servicekit.testing import wait_until


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """uvicorn with the servicekit protocol, as servicekit.serve starts it, on a free port."""
    config = uvicorn.Config(
        _ok, host="127.0.0.1", port=0, http=JsonErrorHttpToolsProtocol, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await wait_until(started, what="uvicorn")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), timeout=10)  # uvicorn closes after a 400
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert status == 400, body
    assert headers["content-type"] == "application/json", body
    error: dict[str, Any] = orjson.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"]
    assert error["request_id"] and error["request_id"] == headers["x-request-id"]
    return error


async def test_a_header_value_the_parser_refuses_is_json_with_the_gateways_request_id(port: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: gw-123\r\nX-Note: a\x01b\r\n\r\n"
    error = _error(*await _exchange(port, request))
    assert error["request_id"] == "gw-123"


@pytest.mark.parametrize(
    "request_line",
    [b"FOO / HTTP/1.1", b"GET /caf\xc3\xa9 HTTP/1.1", b"GET /?q=\xff HTTP/1.1", b"GARBAGE"],
)
async def test_a_request_line_the_parser_refuses_is_json_with_a_new_request_id(
    port: int, request_line: bytes
) -> None:
    _error(*await _exchange(port, request_line + b"\r\nHost: x\r\n\r\n"))


async def test_a_good_request_is_still_answered_by_the_app(port: int) -> None:
    status, _, body = await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (status, body) == (200, b"ok")
