"""Async SQLAlchemy engine and sessions, bound to the service's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from servicekit.config import ServiceSettings
from servicekit.events.outbox import WAKEUP_KEY, OutboxSession, OutboxWakeup

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """Metadata whose tables all live in ``schema``, with stable constraint names.

    A service declares ``class Base(DeclarativeBase): metadata = schema_metadata("auth")``.
    """
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """The service's engine; its search_path is its own schema only."""
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No ping round trip before every checkout (it doubled the cost of a one-statement
        # request); a connection that died is detected on use, answered 503 and the pool's
        # older connections are recycled (SQLAlchemy invalidates the pool on a disconnect).
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_timeout=5,
        hide_parameters=True,  # SQL parameters (password hashes, emails) never reach logs or errors
        connect_args={
            "server_settings": {
                "search_path": settings.db_schema,
                "application_name": settings.service_name,
            },
            "timeout": 5,
            "command_timeout": 15,
        },
    )


def create_sessionmaker(
    engine: AsyncEngine, outbox_wakeup: OutboxWakeup | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; a commit that wrote outbox events notifies ``outbox_wakeup``."""
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        sync_session_class=OutboxSession,
        info={WAKEUP_KEY: outbox_wakeup} if outbox_wakeup is not None else None,
    )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; committed once at the end, rolled back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.runtime.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a failed commit is answered.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
