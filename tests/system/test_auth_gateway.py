"""Auth end to end through the NGINX gateway, and the gateway's own behaviour."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import NamedTuple

import httpx
import pytest

pytestmark = pytest.mark.system

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
PASSWORD = "Gateway-Pass-42"


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=GATEWAY, timeout=15)


async def test_register_token_verify_me_refresh_logout() -> None:
    name = f"gw{uuid.uuid4().hex[:10]}"
    async with _client() as api:
        created = await api.post(
            "/api/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        )
        assert created.status_code == 201
        tokens = (await api.post("/api/auth/token", data={"username": name, "password": PASSWORD})).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        verified = await api.get("/api/auth/verify", headers=bearer)
        assert verified.status_code == 200 and verified.json()["username"] == name
        assert (await api.get("/api/auth/me", headers=bearer)).json()["id"] == created.json()["id"]
        refreshed = await api.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        new_refresh = refreshed.json()["refresh_token"]
        assert (await api.post("/api/auth/logout", json={"refresh_token": new_refresh})).status_code == 204
        assert (await api.post("/api/auth/refresh", json={"refresh_token": new_refresh})).status_code == 401


async def test_sixth_failed_login_is_429_through_the_gateway() -> None:
    name = f"gw{uuid.uuid4().hex[:10]}"
    async with _client() as api:
        body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
        assert (await api.post("/api/auth/register", json=body)).status_code == 201
        statuses = [
            (
                await api.post("/api/auth/token", data={"username": name, "password": "Wrong-Pass-1"})
            ).status_code
            for _ in range(6)
        ]
    assert statuses == [401] * 5 + [429]


class _Answer(NamedTuple):
    status: int
    head: bytes
    body: bytes


async def _pipelined_token_requests(connections: int, per_connection: int) -> list[_Answer]:
    """Answers to many token requests sent pipelined over a few keep-alive connections
    (cheap for the client, so the burst really arrives at once)."""
    url = httpx.URL(GATEWAY)
    request = (
        f"POST /api/auth/token HTTP/1.1\r\nHost: {url.host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
    ).encode()

    async def one_connection() -> list[_Answer]:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(request * per_connection)
        await writer.drain()
        answers: list[_Answer] = []
        while len(answers) < per_connection:
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            answers.append(_Answer(int(head.split(b" ", 2)[1]), head, await reader.readexactly(length)))
        writer.close()
        return answers

    results = await asyncio.wait_for(asyncio.gather(*(one_connection() for _ in range(connections))), 30)
    return [answer for answers in results for answer in answers]


async def test_gateway_rate_limits_the_token_endpoint_with_json_429() -> None:
    # One look at the limited answers of the flood itself: a request sent after the flood may
    # find the bucket refilled on a slow machine (CI once did).
    answers = await _pipelined_token_requests(connections=20, per_connection=40)
    limited = [answer for answer in answers if answer.status == 429]
    assert limited, "the gateway never limited 800 token requests sent at once"
    assert {answer.status for answer in answers} <= {422, 429}
    for answer in limited:
        assert json.loads(answer.body)["error"]["code"] == "too_many_requests"
        assert b"\r\nretry-after: 1\r\n" in answer.head
        assert b"\r\ncontent-type: application/json" in answer.head


async def test_gateway_errors_are_json_with_the_request_id() -> None:
    async with _client() as api:
        unknown = await api.get("/api/nothing-here", headers={"X-Request-ID": "trace-me-1"})
        internal = await api.get(f"/api/bookings/internal/bookings/{uuid.uuid4()}")
        metrics = await api.get("/api/auth/metrics")
        huge = await api.post("/api/auth/register", content=b"x" * (2 * 1024 * 1024))
    assert unknown.status_code == 404 and unknown.json()["error"]["request_id"] == "trace-me-1"
    assert unknown.headers["x-request-id"] == "trace-me-1"
    assert internal.status_code == 404 and metrics.status_code == 404
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"


async def test_the_request_id_reaches_the_service() -> None:
    async with _client() as api:
        answer = await api.get("/api/auth/verify", headers={"X-Request-ID": "from-the-client-7"})
    assert answer.status_code == 401
    assert answer.json()["error"]["request_id"] == "from-the-client-7"
