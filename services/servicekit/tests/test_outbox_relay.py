from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.events import add_event, new_event
from servicekit.events.broker import Broker
from servicekit.events.relay import OutboxRelay
from servicekit.testing import RabbitSpy, wait_until

EVENTS = 150


async def _write_events(sessionmaker: async_sessionmaker[AsyncSession], outbox: Any, tag: str) -> None:
    async with sessionmaker() as session, session.begin():
        for i in range(EVENTS):
            await add_event(session, outbox, new_event("kit.tested", "kit", {"tag": tag, "i": i}))


async def test_two_relays_publish_every_event_exactly_once(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> None:
    outbox = tables["outbox"]
    url = settings.rabbitmq_url.get_secret_value()
    async with RabbitSpy(url, settings.events_exchange, ["kit.#"]) as spy:
        await _write_events(sessionmaker, outbox, "replicas")
        brokers = [Broker(settings), Broker(settings)]
        relays = [OutboxRelay(sessionmaker, outbox, b, settings) for b in brokers]
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
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> None:
    outbox = tables["outbox"]
    dead = settings.model_copy(update={"rabbitmq_url": _secret("amqp://guest:guest@127.0.0.1:1/")})
    broker = Broker(dead)
    relay = OutboxRelay(sessionmaker, outbox, broker, dead)
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
