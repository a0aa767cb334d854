"""servicekit.hotsql: statements on asyncpg inside the session's own transaction."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit import hotsql
from servicekit.testing import round_trips


def _insert_sql(processed: Table) -> str:
    columns = "(event_id, consumer, event_type)"
    return f"INSERT INTO {processed.fullname} {columns} VALUES ($1, 'hotsql', 'kit.test')"


def _claim_sql(processed: Table) -> str:
    return f"{_insert_sql(processed)} ON CONFLICT DO NOTHING RETURNING event_id"


async def _count(
    sessionmaker: async_sessionmaker[AsyncSession], processed: Table, event_id: uuid.UUID
) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(select(func.count()).where(processed.c.event_id == event_id))
    return int(found or 0)


@pytest.mark.parametrize("first", ["hotsql", "sqlalchemy"])
async def test_a_statement_is_part_of_the_session_s_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table], first: str
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    async with sessionmaker() as session:
        if first == "sqlalchemy":
            await session.execute(select(1))
        claimed = await hotsql.fetchrow(session, _claim_sql(processed), event_id)
        assert claimed is not None and claimed["event_id"] == event_id
        # SQLAlchemy sees the row in the same transaction ...
        seen = await session.scalar(select(func.count()).where(processed.c.event_id == event_id))
        assert seen == 1
        await session.rollback()
    # ... and the rollback takes it away: it was never committed on its own.
    assert await _count(sessionmaker, processed, event_id) == 0


async def test_a_committed_statement_stays_and_a_repeat_finds_it(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table]
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        assert await hotsql.fetchrow(session, _claim_sql(processed), event_id) is not None
    async with sessionmaker() as session, session.begin():
        assert await hotsql.fetchrow(session, _claim_sql(processed), event_id) is None
        count = f"SELECT count(*) FROM {processed.fullname} WHERE event_id = $1"
        assert await hotsql.fetchval(session, count, event_id) == 1
    assert await _count(sessionmaker, processed, event_id) == 1


async def test_an_autocommit_connection_commits_each_statement(
    engine: AsyncEngine, tables: dict[str, Table]
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as connection:
        status = await hotsql.execute(connection, _insert_sql(processed), event_id)
    assert status == "INSERT 0 1"
    async with engine.connect() as connection:
        found = await connection.scalar(select(func.count()).where(processed.c.event_id == event_id))
    assert found == 1


async def test_errors_are_sqlalchemy_s_and_the_session_recovers(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table]
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    insert = _insert_sql(processed)
    async with sessionmaker() as session:
        await hotsql.execute(session, insert, event_id)
        with pytest.raises(IntegrityError) as raised:
            await hotsql.execute(session, insert, event_id)
        assert raised.value.orig is not None and getattr(raised.value.orig, "sqlstate", None) == "23505"
        assert str(event_id) not in str(raised.value)  # parameters stay out of errors and logs
        await session.rollback()
        with pytest.raises(DBAPIError, match="no_such_table"):
            await hotsql.execute(session, "SELECT * FROM no_such_table")
        await session.rollback()
        assert await hotsql.fetchval(session, "SELECT 41 + 1") == 42


def _literal_insert_sql(processed: Table, event_id: uuid.UUID) -> str:
    return _insert_sql(processed).replace("$1", f"'{event_id}'")


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_begin_with_sends_the_begin_and_its_statement_in_one_round_trip(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table], outcome: str
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    async with sessionmaker() as session:
        with round_trips() as sent:
            await hotsql.begin_with(session, _literal_insert_sql(processed, event_id))
        assert sent[0] == 1
        count = f"SELECT count(*) FROM {processed.fullname} WHERE event_id = $1"
        assert await hotsql.fetchval(session, count, event_id) == 1  # in the same transaction
        await (session.commit() if outcome == "commit" else session.rollback())
    assert await _count(sessionmaker, processed, event_id) == (1 if outcome == "commit" else 0)


async def test_begin_with_in_a_begun_transaction_is_one_more_statement(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table]
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    async with sessionmaker() as session:
        await session.execute(select(1))
        await hotsql.begin_with(session, _literal_insert_sql(processed, event_id))
        await session.rollback()
    assert await _count(sessionmaker, processed, event_id) == 0


async def test_a_failed_begin_with_is_sqlalchemy_s_error_and_the_session_recovers(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table]
) -> None:
    processed, event_id = tables["processed"], uuid.uuid4()
    async with sessionmaker() as session:
        with pytest.raises(DBAPIError, match="no_such_table"):
            await hotsql.begin_with(session, "SELECT * FROM no_such_table")
        await session.rollback()  # the failed transaction is rolled back, not left open
        await hotsql.begin_with(session, _literal_insert_sql(processed, event_id))
        await session.commit()
    assert await _count(sessionmaker, processed, event_id) == 1
