"""servicekit tests use a private schema in the test database, made and dropped by the superuser."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.config import ServiceSettings
from servicekit.events import outbox_table, processed_events_table
from servicekit.testing.helpers import database_url, test_settings_overrides


@pytest.fixture(scope="session")
def schema() -> str:
    return f"kit_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def tables(schema: str) -> dict[str, Table]:
    metadata = MetaData(schema=schema)
    return {"outbox": outbox_table(metadata), "processed": processed_events_table(metadata), "meta": metadata}  # type: ignore[dict-item]


@pytest.fixture(scope="session")
async def engine(schema: str, tables: dict[str, Any]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url("postgres"))
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(tables["meta"].create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def settings(schema: str) -> ServiceSettings:
    overrides = test_settings_overrides("postgres", schema, service_name="kit-test", consumer_max_attempts=3)
    overrides["events_exchange"] = f"{overrides['events_exchange']}.{uuid.uuid4().hex[:6]}"
    overrides["queue_prefix"] = f"{overrides['queue_prefix']}{uuid.uuid4().hex[:6]}."
    return ServiceSettings(**overrides)
