"""The consumer's one-statement path: the dedupe record and the handler's writes in one autocommit
statement; what it does not claim goes through the transactional handler."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
from servicekit.events.consumer import CLAIMED_WITH, EventConsumer, OneStatement, claim_sql
from servicekit.events.envelope import EventEnvelope
from servicekit.testing import RabbitSpy, wait_until

CONSUMER = "kit.one-statement"


class Transactional:
    """The transactional handler: records the events that reached it."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.handled.append(str(event.event_id))


@pytest.fixture
async def effects(engine: AsyncEngine, schema: str) -> AsyncIterator[str]:
    """A table the statements write into: one row per handled event, ``n`` from its data."""
    name = f'"{schema}".effects'
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {name} (event_id uuid PRIMARY KEY, n int NOT NULL)"))
    yield name
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TABLE {name}"))


def statement(processed: Table, effects: str) -> Any:
    """``kit.happened`` with data ``{"n": n}`` as one statement: the effect row, ``100 / n``
    (n = 0 fails the statement after its claim); ``kit.other`` goes the transactional way."""
    sql = f"""
    WITH claimed AS ({claim_sql(processed)}),
         effect AS (INSERT INTO {effects} SELECT event_id, 100 / $4::int FROM claimed)
    SELECT EXISTS (SELECT 1 FROM claimed) AS claimed
    """

    def one(event: EventEnvelope) -> OneStatement | None:
        return OneStatement(sql, (event.data["n"],)) if event.event_type == "kit.happened" else None

    return one


@pytest.fixture
async def consumer(
    settings: ServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    tables: dict[str, Any],
    effects: str,
) -> AsyncIterator[tuple[EventConsumer, Transactional]]:
    broker = Broker(settings)
    broker.start()
    handler = Transactional()
    consumer = EventConsumer(
        CONSUMER, ["kit.#"], handler, sessionmaker, tables["processed"], broker, settings,
        statement=statement(tables["processed"], effects),
        autocommit=engine.execution_options(isolation_level="AUTOCOMMIT"),
    )  # fmt: skip
    await consumer.start()
    yield consumer, handler
    await broker.close()


def _envelope(event_type: str = "kit.happened", **data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": "2026-12-03T12:00:00+00:00",
        "producer": "kit-test",
        "version": 1,
        "data": data,
    }


def _outcomes(settings: ServiceSettings, outcome: str, event_type: str = "kit.happened") -> float:
    labels = {"service": settings.service_name, "event_type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def _rows(engine: AsyncEngine, sql: str, event_id: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), {"id": event_id})).scalar_one())


async def test_a_redelivered_event_is_written_once_and_reaches_no_handler(
    settings: ServiceSettings, consumer: Any, engine: AsyncEngine, effects: str, tables: dict[str, Any]
) -> None:
    _, handler = consumer
    event = _envelope(n=4)
    processed_before, duplicates_before = _outcomes(settings, "processed"), _outcomes(settings, "duplicate")
    async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
        await spy.publish("kit.happened", event)
        handled = processed_before + 1
        await wait_until(
            lambda: _at_least(_outcomes(settings, "processed"), handled), what="the event handled"
        )
        await spy.publish("kit.happened", event)  # as after a crash between the commit and the ack
        skipped = duplicates_before + 1
        await wait_until(
            lambda: _at_least(_outcomes(settings, "duplicate"), skipped), what="the copy skipped"
        )
    assert await _rows(engine, f"SELECT n FROM {effects} WHERE event_id = :id", event["event_id"]) == 25
    recorded = f"SELECT count(*) FROM {tables['processed'].fullname} WHERE event_id = :id"
    assert await _rows(engine, recorded, event["event_id"]) == 1
    assert handler.handled == [], "the statement handled it; the copy stopped at the dedupe record"


async def test_a_failed_statement_writes_neither_the_dedupe_record_nor_the_effect(
    settings: ServiceSettings, consumer: Any, engine: AsyncEngine, effects: str, tables: dict[str, Any]
) -> None:
    _, handler = consumer
    doomed = _envelope(n=0)  # division by zero in the effect, after the claim
    dead_before = _outcomes(settings, "dead_lettered")
    async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
        await spy.publish("kit.happened", doomed)
        await wait_until(
            lambda: _at_least(_outcomes(settings, "dead_lettered"), dead_before + 1),
            within=20,
            what="the event retried, then dead-lettered",
        )
    recorded = f"SELECT count(*) FROM {tables['processed'].fullname} WHERE event_id = :id"
    assert await _rows(engine, recorded, doomed["event_id"]) == 0
    effect = f"SELECT count(*) FROM {effects} WHERE event_id = :id"
    assert await _rows(engine, effect, doomed["event_id"]) == 0
    assert handler.handled == []


async def test_an_event_without_a_statement_goes_through_the_transactional_handler(
    settings: ServiceSettings, consumer: Any, engine: AsyncEngine, effects: str
) -> None:
    _, handler = consumer
    other = _envelope("kit.other", n=1)
    async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
        await spy.publish("kit.other", other)
        await wait_until(lambda: _has(handler.handled, other["event_id"]), what="the transactional handler")
    assert await _rows(engine, f"SELECT count(*) FROM {effects} WHERE event_id = :id", other["event_id"]) == 0


async def _at_least(value: float, n: float) -> bool:
    return value >= n


async def _has(items: list[str], item: str) -> bool:
    return item in items


class ReadsWithClaim:
    """A transactional handler that keeps what the consumer read with the dedupe record."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.seen[str(event.event_id)] = dict(session.info[CLAIMED_WITH])


async def _reading_consumer(
    name: str,
    read: str,
    settings: ServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, Any],
) -> tuple[Broker, ReadsWithClaim]:
    """A started consumer ``name`` whose claim sends ``read`` ($4 the event's ``n``) with it."""
    broker = Broker(settings)
    broker.start()
    handler = ReadsWithClaim()
    consumer = EventConsumer(
        name, ["kit.#"], handler, sessionmaker, tables["processed"], broker, settings,
        read_with_claim=lambda event: (read, (event.data["n"],)),
    )  # fmt: skip
    await consumer.start()
    return broker, handler


async def test_a_read_sent_with_the_dedupe_record_reaches_the_handler_and_a_copy_reaches_nothing(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> None:
    broker, handler = await _reading_consumer(
        "kit.reads", "SELECT $4::int * 2 AS doubled", settings, sessionmaker, tables
    )
    event = _envelope(n=21)
    duplicates_before = _outcomes(settings, "duplicate")
    try:
        async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
            await spy.publish("kit.happened", event)
            await wait_until(lambda: _has(list(handler.seen), event["event_id"]), what="the event handled")
            handler.seen.clear()
            await spy.publish("kit.happened", event)
            skipped = duplicates_before + 1
            await wait_until(lambda: _at_least(_outcomes(settings, "duplicate"), skipped), what="the copy")
    finally:
        await broker.close()
    assert handler.seen == {}, "the copy found the dedupe record and read nothing"


async def test_the_read_is_in_the_handlers_hands(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> None:
    broker, handler = await _reading_consumer(
        "kit.reads2", "SELECT $4::int * 2 AS doubled WHERE $4::int > 0", settings, sessionmaker, tables
    )
    found, none = _envelope(n=21), _envelope(n=0)
    try:
        async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
            for event in (found, none):
                await spy.publish("kit.happened", event)
                await wait_until(lambda e=event: _has(list(handler.seen), e["event_id"]), what="handled")
    finally:
        await broker.close()
    assert handler.seen[found["event_id"]] == {"doubled": 42}
    assert handler.seen[none["event_id"]] == {"doubled": None}, "no row: its columns NULL"
