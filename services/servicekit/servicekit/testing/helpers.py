"""Small helpers for tests: settings for a test run, an in-process client, polling, tokens."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jose import jwt

from servicekit.config import ServiceSettings

T = TypeVar("T")

TEST_DATABASE = os.environ.get("TEST_DATABASE_NAME", "moviebooking_test")
PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("PGPORT", "5432")
RUN_ID = uuid.uuid4().hex[:8]


def database_url(role: str, database: str = TEST_DATABASE, host: str = PG_HOST, port: str = PG_PORT) -> str:
    password = os.environ.get("TEST_DB_PASSWORD", "dev-only-db-password")
    return f"postgresql+asyncpg://{role}:{password}@{host}:{port}/{database}"


def test_settings_overrides(role: str, schema: str, **extra: Any) -> dict[str, Any]:
    """Settings for a service under test: the test database, and this run's own key
    prefix, exchange and queue names so a dirty machine or a parallel run never interferes."""
    return {
        "environment": "test",
        "database_url": database_url(role),
        "db_schema": schema,
        "redis_url": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "redis_prefix": f"test:{RUN_ID}:",
        "rabbitmq_url": os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        "events_exchange": f"test.{RUN_ID}.booking_events",
        "queue_prefix": f"test.{RUN_ID}.",
        "queue_expires_ms": 600_000,
        "outbox_poll_interval": 0.05,
        "consumer_retry_base_ms": 50,
        **extra,
    }


test_settings_overrides.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


@asynccontextmanager
async def app_client(app: FastAPI, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an httpx client talking to it in-process."""
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    within: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


def mint_token(
    settings: ServiceSettings,
    user_id: uuid.UUID | None = None,
    roles: Sequence[str] = ("user",),
    username: str = "tester",
    email: str = "tester@example.com",
    expires_in: timedelta = timedelta(minutes=15),
    **claims: Any,
) -> str:
    """An access token signed like auth-service's, for tests of the other services."""
    now = datetime.now(UTC)
    payload = {
        "sub": str(user_id or uuid.uuid4()),
        "username": username,
        "email": email,
        "roles": list(roles),
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + expires_in).timestamp()),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)
