"""Every error a client can get through the gateway is the one JSON error shape with a request id:
also the answers NGINX makes itself before any location runs (a request line or headers it
cannot parse or that are too large, unknown methods) and those uvicorn makes itself.

Sent over a raw socket to a private NGINX rendered from gateway/*.template: httpx refuses to
send most of these requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from faultkit import Stack
from private_gateway import Gateway, running_gateway

from servicekit.testing import wait_until

HOST = b"Host: gateway\r\n"
BIG = b"a" * 9000  # longer than one of NGINX's 8 kB header buffers


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


async def exchange(port: int, request: bytes) -> Answer:
    """Send raw bytes, read one answer (to its Content-Length, or to the close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = [
            (name.strip().lower(), value.strip()) for name, _, value in (x.partition(":") for x in lines)
        ]
        length = [int(value) for name, value in headers if name == "content-length"]
        body = await asyncio.wait_for(reader.readexactly(length[0]) if length else reader.read(), timeout=10)
        return Answer(int(status_line.split(" ")[1]), headers, body)
    finally:
        writer.close()


def assert_json_error(answer: Answer, status: int, code: str) -> dict[str, str]:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.header("content-type") == ["application/json"], (answer.headers, answer.body)
    error: dict[str, str] = json.loads(answer.body)["error"]
    assert (error["code"], bool(error["message"])) == (code, True), error
    assert error["request_id"], error
    assert answer.header("x-request-id") == [error["request_id"]], (answer.headers, error)
    return error


def get(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def post(target: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return (
        b"POST " + target + b" HTTP/1.1\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    )


MOVIES = b"/api/movies/movies"
CASES = {
    # request line NGINX cannot parse: no URI yet when it answers
    "garbage request line": (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    "lower-case method": (b"get / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "bad_request"),
    "control byte in the path": (get(b"/api/movies/\x01"), 400, "bad_request"),
    "NUL in the path": (get(b"/api/movies/movies/%00"), 400, "bad_request"),
    "path above the root": (get(b"/../etc/passwd"), 400, "bad_request"),
    "bad percent-encoding": (get(b"/api/movies/%zz"), 400, "bad_request"),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request"),
    "URI longer than 8 kB": (get(MOVIES + b"?q=" + BIG), 414, "uri_too_long"),
    "HTTP/2.0 request line": (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505, "http_version_not_supported"),
    # headers NGINX refuses
    "a header line longer than 8 kB": (get(MOVIES, b"X-Big: " + BIG), 431, "request_header_fields_too_large"),
    "a cookie longer than 8 kB": (get(MOVIES, b"Cookie: a=" + BIG), 431, "request_header_fields_too_large"),
    "headers over 32 kB": (
        get(MOVIES, *(b"X-H%d: %s" % (i, b"a" * 7000) for i in range(6))),
        431,
        "request_header_fields_too_large",
    ),
    "no Host on HTTP/1.1": (b"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),
    "two Hosts": (get(b"/health", b"Host: other"), 400, "bad_request"),
    "NUL in a header": (get(MOVIES, b"X-A: a\x00b"), 400, "bad_request"),
    "space before a colon": (get(MOVIES, b"X-A : b"), 400, "bad_request"),
    "folded header": (get(MOVIES, b"X-A: a\r\n  b"), 400, "bad_request"),
    # bodies
    "invalid Content-Length": (post(b"/api/bookings/book", b"Content-Length: ten"), 400, "bad_request"),
    "Content-Length and chunked": (
        post(b"/api/bookings/book", b"Content-Length: 3", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        400,
        "bad_request",
    ),
    "bad chunk": (
        post(b"/api/bookings/book", b"Transfer-Encoding: chunked", body=b"zz\r\n\r\n"),
        400,
        "bad_request",
    ),
    "unknown transfer coding": (
        post(b"/api/bookings/book", b"Transfer-Encoding: gzip"),
        501,
        "not_implemented",
    ),
    "body over 1 MB": (post(b"/api/bookings/book", b"Content-Length: 2000000"), 413, "payload_too_large"),
    # methods
    "unknown method on the API": (get(MOVIES, method=b"FOO"), 501, "not_implemented"),
    "unknown method on the web page": (get(b"/index.html", method=b"FOO"), 501, "not_implemented"),
    "WebDAV method": (get(MOVIES, method=b"PROPFIND"), 501, "not_implemented"),
    "TRACE": (get(MOVIES, method=b"TRACE"), 405, "method_not_allowed"),
    "CONNECT": (get(b"/", method=b"CONNECT"), 405, "method_not_allowed"),
    "CONNECT to host:port": (get(b"gateway:443", method=b"CONNECT"), 400, "bad_request"),
    "POST to a file of the web page": (post(b"/index.html", b"Content-Length: 0"), 405, "method_not_allowed"),
    "a method the route lacks": (get(MOVIES, method=b"DELETE"), 405, "method_not_allowed"),
    # bytes NGINX passes on and uvicorn's parser refuses
    "raw non-ASCII byte in the path": (get(MOVIES + b"/\xff"), 400, "bad_request"),
    "raw UTF-8 in the query": (get(MOVIES + b"?q=caf\xc3\xa9"), 400, "bad_request"),
    "control byte in a header value": (get(MOVIES, b"X-Note: a\x01b"), 400, "bad_request"),
    "DEL in a header value": (get(MOVIES, b"X-Note: a\x7fb"), 400, "bad_request"),
    # the web page's files and unknown routes
    "folder of the web page": (get(b"/js/"), 403, "forbidden"),
    "If-Match on a file": (get(b"/index.html", b'If-Match: "other"'), 412, "precondition_failed"),
    "unknown route with an extension": (get(b"/api/nothing.html"), 404, "not_found"),
    "the error location itself": (get(b"/_gateway/error"), 404, "not_found"),
    "service down": (get(b"/api/auth/users/me"), 502, "bad_gateway"),  # auth is not running here
}


@pytest.fixture(scope="module")
async def private_gateway(stack: Stack) -> AsyncIterator[Gateway]:
    """One private NGINX for this module's many requests."""
    async with running_gateway(stack) as gw:
        yield gw


@pytest.mark.parametrize(("request_bytes", "status", "code"), CASES.values(), ids=CASES.keys())
async def test_the_gateway_answers_every_error_in_the_json_shape(
    private_gateway: Gateway, request_bytes: bytes, status: int, code: str
) -> None:
    assert_json_error(await exchange(private_gateway.port, request_bytes), status, code)


async def test_the_clients_request_id_is_kept_once_headers_are_read(private_gateway: Gateway) -> None:
    mine = b"X-Request-ID: client-id-1"
    for request, status, code in [
        (get(MOVIES, mine, method=b"TRACE"), 405, "method_not_allowed"),
        (get(MOVIES, mine, b"X-Big: " + BIG), 431, "request_header_fields_too_large"),
        (get(MOVIES, mine, b"X-Note: a\x01b"), 400, "bad_request"),  # answered by movie-service's uvicorn
    ]:
        error = assert_json_error(await exchange(private_gateway.port, request), status, code)
        assert error["request_id"] == "client-id-1", request[:40]


async def test_a_range_request_for_a_file_gets_the_whole_file(private_gateway: Gateway) -> None:
    answer = await exchange(private_gateway.port, get(b"/index.html", b"Range: bytes=99999999-"))
    assert answer.status == 200 and answer.header("x-request-id") and b"<html" in answer.body


async def test_the_access_log_keeps_the_clients_method_and_path(private_gateway: Gateway) -> None:
    """An error page is an internal GET of /_gateway/error: the log still says what the client sent."""
    log = private_gateway.dir / "logs/gateway.log"
    error = assert_json_error(
        await exchange(private_gateway.port, get(MOVIES, method=b"FOO")), 501, "not_implemented"
    )

    async def logged() -> dict[str, object] | None:
        # NGINX's escape=json leaves bytes over 0x7f as they came (the raw-byte cases above)
        lines = [json.loads(line) for line in log.read_bytes().decode(errors="replace").splitlines()]
        return next((line for line in lines if line["request_id"] == error["request_id"]), None)

    entry = await wait_until(logged, what="the access log line")
    assert (entry["method"], entry["uri"], entry["status"]) == ("FOO", "/api/movies/movies", 501)
