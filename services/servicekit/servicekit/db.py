"""Async SQLAlchemy engine and sessions, bound to the service's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
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
    """The service's engine; unqualified names resolve in its own schema only."""
    engine = create_async_engine(
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
        connect_args=connect_args(settings),
    )
    if settings.db_behind_pgbouncer:
        _require_schema(engine, settings.db_schema)
    return engine


def connect_args(settings: ServiceSettings) -> dict[str, Any]:
    """asyncpg's connect arguments, for PostgreSQL itself or for PgBouncer in transaction mode."""
    server_settings = {"application_name": settings.service_name}
    timeouts = {"timeout": 5, "command_timeout": 15}
    if not settings.db_behind_pgbouncer:
        return {**timeouts, "server_settings": {**server_settings, "search_path": settings.db_schema}}
    # PgBouncer gives each transaction (each statement, in autocommit) any server connection of
    # the pool, so a statement prepared on one is unknown to the next ("prepared statement
    # __asyncpg_stmt_1__ does not exist"). Without its cache asyncpg prepares unnamed statements
    # and parses each again in the message that runs it; SQLAlchemy's cache keeps only their
    # result columns (one round trip per statement, as before). Unique statement names would
    # not do: an autocommit statement is prepared and run in two messages, on two servers.
    # PgBouncer 1.18 refuses a search_path startup parameter: the role's own setting gives the
    # schema (database/init: ALTER ROLE ... SET search_path), checked by _require_schema.
    return {**timeouts, "statement_cache_size": 0, "server_settings": server_settings}


class SchemaNotOnSearchPath(RuntimeError):
    """Behind PgBouncer the role's search_path does not start with the service's schema."""


def _require_schema(engine: AsyncEngine, schema: str) -> None:
    """Refuse connections whose current schema is not the service's.

    The dialect reads the schema on the engine's first connection: a role fixed later needs a restart.
    """

    def check(_dbapi_connection: object, _record: object) -> None:
        found = engine.dialect.default_schema_name
        if found != schema:
            raise SchemaNotOnSearchPath(
                f"the role's current schema is {found!r}, not {schema!r}: behind PgBouncer the schema "
                f"comes from the role (ALTER ROLE <role> IN DATABASE <db> SET search_path = {schema})"
            )

    event.listen(engine.sync_engine, "connect", check)


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
