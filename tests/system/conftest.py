"""Shared fixtures of the bad-input, authorization and schemathesis system tests.

They talk to the running system through the gateway at ``GATEWAY_URL``; the admin is
auth-service's bootstrap admin (``ADMIN_USERNAME`` / ``ADMIN_PASSWORD``). Fixture names
are specific (``gateway``, ``people``) so the other system modules' own ``api`` fixtures
are left alone.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "AdminDevPass123!")
USER_PASSWORD = "Abuse-Case-Pass-42"


@dataclass
class Person:
    """A registered user (or the admin) with a bearer token."""

    username: str
    token: str
    user_id: str = ""
    email: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class People:
    """Registers users and logs in the admin through the gateway."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api

    async def login(self, username: str, password: str) -> str:
        response = await self.api.post("/api/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def user(self) -> Person:
        name = f"ab{uuid.uuid4().hex[:12]}"
        body = {"email": f"{name}@example.com", "username": name, "password": USER_PASSWORD}
        created = await self.api.post("/api/auth/register", json=body)
        assert created.status_code == 201, created.text
        token = await self.login(name, USER_PASSWORD)
        return Person(name, token, created.json()["id"], body["email"])

    async def admin(self) -> Person:
        return Person(ADMIN_USERNAME, await self.login(ADMIN_USERNAME, ADMIN_PASSWORD))

    async def pending_booking(self, person: Person, seats: int = 1) -> dict[str, Any]:
        """A pending booking of ``seats`` available seats of some upcoming showtime."""
        listed = await self.api.get("/api/movies/showtimes", params={"limit": 100})
        showtimes = listed.json()["items"]
        for _ in range(15):
            showtime = random.choice(showtimes)
            seat_map = (await self.api.get(f"/api/movies/showtimes/{showtime['id']}/seats")).json()
            free = [s["seat_id"] for s in seat_map["seats"] if s["status"] == "available"]
            if len(free) < seats:
                continue
            body = {"showtime_id": showtime["id"], "seat_ids": random.sample(free, seats)}
            response = await self.api.post("/api/bookings/book", json=body, headers=person.headers)
            if response.status_code == 201:
                return dict(response.json())
        raise AssertionError("could not book a free seat")


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=15) as client:
        yield client


@pytest.fixture
def people(gateway: httpx.AsyncClient) -> People:
    return People(gateway)


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "request_id"}}`` with ``status``."""
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert error["code"] and error["message"], error
    return dict(error)


@pytest.fixture
def json_error() -> Any:
    """``json_error(response, status)``: assert the shared JSON error shape; returns the error."""
    return assert_json_error
