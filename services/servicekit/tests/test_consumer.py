from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
from servicekit.events.consumer import EventConsumer, queue_message_count
from servicekit.events.envelope import EventEnvelope
from servicekit.metrics import CONSUMER_LAG
from servicekit.testing import RabbitSpy, wait_until


class Recorder:
    """A handler that fails ``fail_first`` times per event, then records it."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: dict[str, int] = {}
        self.handled: list[str] = []

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        key = str(event.event_id)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] <= self.fail_first:
            raise RuntimeError("handler failed on purpose")
        self.handled.append(key)


def envelope(**data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "kit.happened",
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "kit-test",
        "version": 1,
        "data": data,
    }


@pytest.fixture
async def run_consumer(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> AsyncIterator[Any]:
    started: list[tuple[Broker, EventConsumer]] = []

    async def start(handler: Recorder) -> EventConsumer:
        broker = Broker(settings)
        broker.start()
        consumer = EventConsumer(
            "kit.events", ["kit.#"], handler, sessionmaker, tables["processed"], broker, settings
        )
        await consumer.start()
        started.append((broker, consumer))
        return consumer

    yield start
    for broker, _ in started:
        await broker.close()


async def _spy(settings: ServiceSettings) -> RabbitSpy:
    return RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, [])


async def test_the_same_event_twice_is_handled_once(settings: ServiceSettings, run_consumer: Any) -> None:
    handler = Recorder()
    await run_consumer(handler)
    event = envelope(n=1)
    async with await _spy(settings) as spy:
        await spy.publish("kit.happened", event)
        await spy.publish("kit.happened", event)
        await spy.publish("kit.happened", envelope(n=2))
    await wait_until(lambda: _at_least(handler.handled, 2), within=10, what="two distinct events")
    assert handler.handled.count(event["event_id"]) == 1


async def test_a_failing_handler_is_retried_with_backoff_then_succeeds(
    settings: ServiceSettings, run_consumer: Any
) -> None:
    handler = Recorder(fail_first=2)
    await run_consumer(handler)
    event = envelope(n=3)
    async with await _spy(settings) as spy:
        await spy.publish("kit.happened", event)
    await wait_until(lambda: _at_least(handler.handled, 1), within=15, what="retried event")
    assert handler.attempts[event["event_id"]] == 3


async def test_what_keeps_failing_and_poison_go_to_the_dlq_without_blocking(
    settings: ServiceSettings, run_consumer: Any
) -> None:
    handler = Recorder(fail_first=99)
    consumer = await run_consumer(handler)
    doomed = envelope(n=4)
    async with await _spy(settings) as spy:
        channel = await spy._connection.channel()
        exchange = await channel.get_exchange(settings.events_exchange)
        await exchange.publish(aio_pika.Message(b"{not an envelope"), routing_key="kit.happened")
        await spy.publish("kit.happened", doomed)
        dlq = f"{consumer.queue_name}.dlq"
        await wait_until(lambda: _queue_has(channel, dlq, 2), within=20, what="two dead letters")
        assert handler.attempts[doomed["event_id"]] == settings.consumer_max_attempts
        await consumer.report_depths()
        assert CONSUMER_LAG.labels(settings.service_name, dlq)._value.get() == 2
        handler.fail_first = 0
        await spy.publish("kit.happened", envelope(n=5))  # the queue still flows
        await wait_until(lambda: _at_least(handler.handled, 1), within=10, what="next event")
        await channel.close()


async def _at_least(items: list[str], n: int) -> bool:
    return len(items) >= n


async def _queue_has(channel: Any, name: str, n: int) -> bool:
    return await queue_message_count(channel, name) >= n
