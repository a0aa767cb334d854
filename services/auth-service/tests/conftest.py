from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from auth_service.config import AuthSettings
from auth_service.main import create_app
from servicekit.testing import app_client, test_settings_overrides

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}


def make_settings(**extra: object) -> AuthSettings:
    return AuthSettings(**test_settings_overrides("auth_service", "auth", **FAST_ARGON2, **extra))


@pytest.fixture(scope="session")
def settings() -> AuthSettings:
    return make_settings()


@pytest.fixture(scope="session")
async def client(settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings)) as c:
        yield c


PASSWORD = "Correct-Horse-42"
Builder = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def register(client: httpx.AsyncClient) -> Builder:
    """Register a fresh user (unique name and email); returns the user plus its password."""

    async def build(**overrides: Any) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:10]
        body = {"email": f"u{suffix}@example.com", "username": f"u{suffix}", "password": PASSWORD}
        body.update(overrides)
        response = await client.post("/register", json=body)
        assert response.status_code == 201, response.text
        return {**response.json(), "password": body["password"]}

    return build


@pytest.fixture
def login(client: httpx.AsyncClient) -> Builder:
    async def build(username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await client.post("/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return dict(response.json())

    return build
