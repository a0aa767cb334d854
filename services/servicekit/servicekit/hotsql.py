"""Hot statements straight on asyncpg, inside the SQLAlchemy session's own transaction.

A statement through SQLAlchemy costs ~0.5-0.8 ms of CPU (compiling or finding it in the
cache, the execution context, the result and ORM machinery); the same statement run by
asyncpg costs ~0.07 ms. The purchase's few statements per request (docs/benchmarks.md)
go this way; everything else stays SQLAlchemy.

``fetch`` / ``fetchrow`` / ``fetchval`` / ``execute`` take the SQL as text with ``$1, $2 ...``
parameters and run it on the asyncpg connection under ``bind`` (an ``AsyncSession`` or an
``AsyncConnection``): in its transaction, begun first if the session has not sent a statement
yet (an autocommit connection runs each statement on its own). asyncpg prepares a statement
once per connection and reuses it; behind PgBouncer (``statement_cache_size=0``,
servicekit.db) it sends unnamed statements instead, which any server connection can run.
JSON and JSONB go in as JSON text and come out decoded (the codecs SQLAlchemy's dialect
sets on each connection). Errors come out as SQLAlchemy's (``IntegrityError``,
``DBAPIError``), so callers and the error handler treat both paths alike; a dropped
connection is invalidated as SQLAlchemy does.

``begin_with`` sends a transaction's BEGIN and its first statement (values written in it, no
parameters) as one message: a round trip less per transaction that starts with, say, a lock.
It sets asyncpg's and SQLAlchemy's adapter's transaction state as ``Transaction.start`` does
(private attributes: tests/test_hotsql.py pins them on an upgrade).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.transaction import TransactionState
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Bind = AsyncSession | AsyncConnection
Row: TypeAlias = asyncpg.Record  # columns by name or position; ``Model(**row)`` builds an object
T = TypeVar("T")


async def fetchrow(bind: Bind, sql: str, *args: Any) -> Row | None:
    """The first row of ``sql`` (None without one), in ``bind``'s transaction."""
    return await _run(bind, sql, args, lambda driver: driver.fetchrow(sql, *args))


async def fetch(bind: Bind, sql: str, *args: Any) -> list[Row]:
    """Every row of ``sql``, in ``bind``'s transaction."""
    return await _run(bind, sql, args, lambda driver: driver.fetch(sql, *args))


async def fetchval(bind: Bind, sql: str, *args: Any) -> Any:
    """The first column of the first row of ``sql``, in ``bind``'s transaction."""
    return await _run(bind, sql, args, lambda driver: driver.fetchval(sql, *args))


async def execute(bind: Bind, sql: str, *args: Any) -> str:
    """Run ``sql`` in ``bind``'s transaction; PostgreSQL's status (``'UPDATE 1'``)."""
    return await _run(bind, sql, args, lambda driver: driver.execute(sql, *args))


async def begin_with(bind: Bind, sql: str) -> None:
    """Run ``sql`` (no parameters: its values written in it) as the first statement of
    ``bind``'s transaction, sent with the BEGIN in one round trip (two statements of one simple
    query); as ``execute`` when the transaction has begun already or is not a plain one."""
    connection = await bind.connection() if isinstance(bind, AsyncSession) else bind
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    begin = _PLAIN_BEGIN.get(adapted.isolation_level)
    if adapted._transaction is not None or begin is None or adapted.readonly or adapted.deferrable:
        await execute(bind, sql)
        return
    driver = adapted.driver_connection
    # The transaction as asyncpg's ``Transaction.start`` leaves it and SQLAlchemy's adapter holds
    # it, marked before sending: a failure then rolls it back as any failed transaction.
    transaction = driver.transaction()
    transaction._state = TransactionState.STARTED
    driver._top_xact = transaction
    adapted._transaction = transaction
    try:
        await driver.execute(f"{begin}; {sql}")
    except Exception as error:
        translated = await _translated(connection, adapted, sql, (), error)
        if translated is error:
            raise
        raise translated from error


# The BEGIN asyncpg sends for SQLAlchemy's adapter, by its isolation level.
_PLAIN_BEGIN = {None: "BEGIN", "read_committed": "BEGIN ISOLATION LEVEL READ COMMITTED"}


async def _run(
    bind: Bind, sql: str, args: tuple[Any, ...], call: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    connection = await bind.connection() if isinstance(bind, AsyncSession) else bind
    adapted = (await connection.get_raw_connection()).dbapi_connection
    try:
        # SQLAlchemy's adapter begins the DBAPI transaction with its first statement (PEP 249's
        # implicit BEGIN); a statement sent past it must begin it the same way, or it would run
        # outside the transaction that the session commits or rolls back.
        if adapted._transaction is None:  # type: ignore[union-attr]
            await adapted._start_transaction()  # type: ignore[union-attr]
        return await call(adapted.driver_connection)  # type: ignore[union-attr]
    except Exception as error:
        translated = await _translated(connection, adapted, sql, args, error)
        if translated is error:
            raise
        raise translated from error


async def _translated(
    connection: AsyncConnection, adapted: Any, sql: str, args: tuple[Any, ...], error: Exception
) -> Exception:
    """``error`` as SQLAlchemy raises it from its own execution (asyncpg's errors mapped to the
    DBAPI's, then wrapped in ``sqlalchemy.exc``); other errors (OSError, timeouts) as they are."""
    dialect = connection.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        adapted._handle_exception(error)  # raises: mapped, or ``error`` itself
    except dbapi_error as mapped:
        invalidated = dialect.is_disconnect(mapped, adapted, None)
        if invalidated:
            await connection.invalidate()
        return DBAPIError.instance(
            sql,
            args,
            mapped,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
    except Exception:
        return error
    return error  # not reached: ``_handle_exception`` always raises
