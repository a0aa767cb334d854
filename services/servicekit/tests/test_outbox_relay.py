from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.config import ServiceSettings
from servicekit.events import add_event, new_event
from servicekit.events.broker import Broker
from servicekit.events.relay import OutboxRelay
from servicekit.testing import RabbitSpy, app_client, wait_until

EVENTS = 150


async def _write_events(sessionmaker: async_sessionmaker[AsyncSession], outbox: Any, tag: str) -> None:
    async with sessionmaker() as session, session.begin():
        for i in range(EVENTS):
            await add_event(session, outbox, new_event("kit.tested", "kit", {"tag": tag, "i": i}))


async def test_two_relays_publish_every_event_exactly_once(
    settings: ServiceSettings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, Any],
) -> None:
    outbox = tables["outbox"]
    url = settings.rabbitmq_url.get_secret_value()
    async with RabbitSpy(url, settings.events_exchange, ["kit.#"]) as spy:
        await _write_events(sessionmaker, outbox, "replicas")
        brokers = [Broker(settings), Broker(settings)]
        relays = [OutboxRelay(engine, outbox, b, settings) for b in brokers]
        for broker, relay in zip(brokers, relays, strict=True):
            broker.start()
            relay.start()
        try:
            await wait_until(lambda: _count(spy, "replicas", EVENTS), within=30, what="all events")
            await asyncio.sleep(0.3)  # give a duplicate the chance to show up
        finally:
            for broker, relay in zip(brokers, relays, strict=True):
                await relay.stop()
                await broker.close()
    mine = [m for m in spy.messages if m["data"]["tag"] == "replicas"]
    assert len(mine) == EVENTS
    assert len({m["event_id"] for m in mine}) == EVENTS
    assert all(m["_delivery_mode"] == 2 for m in mine)
    async with sessionmaker() as session:
        left = await session.scalar(select(func.count()).where(outbox.c.published_at.is_(None)))
    assert left == 0


async def _count(spy: RabbitSpy, tag: str, expected: int) -> bool:
    return len([m for m in spy.messages if m["data"]["tag"] == tag]) >= expected


async def test_events_wait_in_the_outbox_until_a_broker_is_there(
    settings: ServiceSettings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, Any],
) -> None:
    outbox = tables["outbox"]
    dead = settings.model_copy(update={"rabbitmq_url": _secret("amqp://guest:guest@127.0.0.1:1/")})
    broker = Broker(dead)
    relay = OutboxRelay(engine, outbox, broker, dead)
    broker.start()
    relay.start()
    async with sessionmaker() as session, session.begin():
        await add_event(session, outbox, new_event("kit.tested", "kit", {"tag": "waiting", "i": 0}))
    await asyncio.sleep(0.3)
    async with sessionmaker() as session:
        waiting = await session.scalar(select(func.count()).where(outbox.c.published_at.is_(None)))
    await relay.stop()
    await broker.close()
    assert waiting and waiting >= 1


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def _write_one(
    sessionmaker: async_sessionmaker[AsyncSession], outbox: Any, tag: str, event_type: str = "kit.tested"
) -> uuid.UUID:
    event = new_event(event_type, "kit", {"tag": tag, "i": 0})
    async with sessionmaker() as session, session.begin():
        await add_event(session, outbox, event)
    return event.event_id


async def test_a_commit_wakes_the_relay_long_before_its_poll(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> None:
    outbox = tables["outbox"]
    slow_poll = settings.model_copy(update={"outbox_poll_interval": 30.0})
    app = build_app(slow_poll, ServiceSpec("kit", "kit", routers=[], outbox=outbox))
    async with RabbitSpy(
        settings.rabbitmq_url.get_secret_value(), settings.events_exchange, ["kit.#"]
    ) as spy:
        await _write_one(sessionmaker, outbox, "before-start")
        async with app_client(app):
            # the relay's first round takes what was there; then it waits for a commit or 30 s
            await wait_until(lambda: _count(spy, "before-start", 1), within=15, what="the first round")
            runtime: Runtime = app.state.runtime
            await _write_one(runtime.sessionmaker, outbox, "woken")
            await wait_until(
                lambda: _count(spy, "woken", 1), within=5, what="the event, long before the poll"
            )


@asynccontextmanager
async def _refusing_queue(settings: ServiceSettings, routing_key: str) -> AsyncIterator[None]:
    """A queue that takes nothing: the broker nacks every publish routed to it."""
    connection = await aio_pika.connect(settings.rabbitmq_url.get_secret_value())
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(settings.events_exchange)
        arguments = {"x-max-length": 0, "x-overflow": "reject-publish"}
        queue = await channel.declare_queue(exclusive=True, arguments=arguments)
        await queue.bind(exchange, routing_key=routing_key)
        yield
    finally:
        await connection.close()


async def test_a_round_keeps_every_confirmed_event_when_the_broker_refuses_one(
    settings: ServiceSettings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, Any],
) -> None:
    outbox = tables["outbox"]
    url = settings.rabbitmq_url.get_secret_value()
    broker = Broker(settings)
    async with RabbitSpy(url, settings.events_exchange, ["kit.accepted"]) as spy:
        async with _refusing_queue(settings, "kit.refused"):
            refused = await _write_one(sessionmaker, outbox, "refused", "kit.refused")  # first in the batch
            accepted = [await _write_one(sessionmaker, outbox, "accepted", "kit.accepted") for _ in range(5)]
            broker.start()
            try:
                await asyncio.wait_for(broker.ready.wait(), 10)
                await OutboxRelay(engine, outbox, broker, settings).publish_pending()
                states = await _states(sessionmaker, outbox, [refused, *accepted])
            finally:
                await broker.close()
                async with sessionmaker() as session, session.begin():
                    await session.execute(delete(outbox).where(outbox.c.event_id == refused))
        assert states[refused] == (False, 1)  # unpublished, its failed attempt counted, for a later round
        assert [states[event_id] for event_id in accepted] == [(True, 0)] * 5
        await wait_until(lambda: _count(spy, "accepted", 5), within=10, what="the confirmed events")


async def _states(
    sessionmaker: async_sessionmaker[AsyncSession], outbox: Any, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[bool, int]]:
    """Per event: whether it is marked published, and its failed attempts."""
    stmt = select(outbox.c.event_id, outbox.c.published_at, outbox.c.attempts).where(
        outbox.c.event_id.in_(ids)
    )
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    return {row.event_id: (row.published_at is not None, row.attempts) for row in rows}
