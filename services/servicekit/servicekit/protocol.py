"""uvicorn's HTTP protocol (httptools), with its own 400 in the one JSON error shape.

uvicorn answers a request its parser refuses before any app code runs, in text/plain and
without a request id. NGINX passes some of those on: a header value with a control
character (0x01-0x1f but tab, or 0x7f) is one it accepts and llhttp does not.
"""

from __future__ import annotations

import logging

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from servicekit.errors import error_body
from servicekit.middleware import incoming_request_id

logger = logging.getLogger("servicekit.protocol")


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose "invalid HTTP request" answer is the JSON error shape.

    The request id is the X-Request-ID the parser read before the bad byte (the gateway
    sends its own before the client's headers), or a new one.
    """

    def send_400_response(self, msg: str) -> None:
        request_id = incoming_request_id(self.headers or ())
        logger.warning("refused a request the HTTP parser could not read", extra={"request_id": request_id})
        body = orjson.dumps(error_body("bad_request", "Malformed HTTP request", request_id=request_id))
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body)
        self.transport.close()
