"""A minimal HTTP/1.1 keep-alive client for the load engine: one connection, one request at a time.

httpx costs more CPU per request than NGINX spends answering ``/health``, so with httpx
the benchmark measured its own client (585 req/s for a no-op). This client does only what
the benchmark needs (GET and POST with a JSON body, Content-Length or chunked answers,
reconnect when the server closes), so its cost per request is a small fraction of any
service's and the ratios compare the servers, not the client.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class WireError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``base_url`` (http only: the benchmark is local)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._host_header = f"{self.host}:{self.port}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Answer:
        """Send one request and read its whole answer (reconnecting first if the server closed)."""
        if self._writer is None:
            await self.open()
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}".encode())
        if body is not None:
            head.append(b"Content-Type: application/json")
        if body is not None or method == "POST":
            head.append(b"Content-Length: " + str(len(payload)).encode())
        try:
            return await asyncio.wait_for(
                self._exchange(b"\r\n".join(head) + b"\r\n\r\n" + payload), self.timeout
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise WireError(f"{method} {path}: {type(exc).__name__}") from exc

    async def _exchange(self, raw: bytes) -> Answer:
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, closing = -1, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        body = await (self._chunked() if chunked else self._reader.readexactly(max(length, 0)))
        if closing:
            await self.close()
        return Answer(status, body)

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
