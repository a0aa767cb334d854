"""Quorum queues on the real RabbitMQ, and the start-up migration of queues declared otherwise
(classic queues of an earlier version): what the broker reports, and not one message lost."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
from servicekit.events.consumer import EventConsumer, queue_message_count
from servicekit.events.envelope import EventEnvelope
from servicekit.events.migration import RETURN_HEADER
from servicekit.testing import wait_until
from servicekit.testing.rabbit import list_queues

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
CONSUMER = "kit.events"
CLASSIC_RETRY_WAIT_S = 3600  # a back-off that would outlast the test: only the migration brings it back


class Handled:
    """The handler: records the event ids it saw (the consumer's ledger makes them distinct)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.ids.append(str(event.event_id))


StartConsumer = Callable[[Handled, ServiceSettings], Awaitable[EventConsumer]]


@pytest.fixture
async def start_consumer(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Any]
) -> AsyncIterator[StartConsumer]:
    async with AsyncExitStack() as stack:

        async def start(handler: Handled, settings: ServiceSettings) -> EventConsumer:
            broker = Broker(settings)
            broker.start()
            stack.push_async_callback(broker.close)
            consumer = EventConsumer(
                CONSUMER, ["kit.#"], handler, sessionmaker, tables["processed"], broker, settings
            )
            await consumer.start()
            return consumer

        yield start


@pytest.fixture
async def channel(settings: ServiceSettings) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(settings.rabbitmq_url.get_secret_value())
    async with connection:
        yield await connection.channel()


def event(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "kit.happened",
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "kit-test",
            "version": 1,
            "data": {"n": n},
        }
    )


async def put(channel: AbstractChannel, queue: str, bodies: list[bytes], **properties: Any) -> list[str]:
    """Publish persistent messages straight to a queue; their event ids."""
    for body in bodies:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties)
        await channel.default_exchange.publish(message, routing_key=queue)
    return [orjson.loads(body)["event_id"] for body in bodies]


async def declare_classic(channel: AbstractChannel, settings: ServiceSettings) -> str:
    """The queues as the version before quorum queues declared them, bound; the main queue's name."""
    main = f"{settings.queue_prefix}{CONSUMER}"
    expires = {"x-expires": settings.queue_expires_ms}
    await channel.declare_queue(f"{main}.dlq", durable=True, arguments=expires)
    retry = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": main, **expires}
    await channel.declare_queue(f"{main}.retry", durable=True, arguments=retry)
    dead_letters = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{main}.dlq", **expires}
    queue = await channel.declare_queue(main, durable=True, arguments=dead_letters)
    exchange = await channel.declare_exchange(
        settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    await queue.bind(exchange, routing_key="kit.#")
    return main


async def fill(channel: AbstractChannel, main: str) -> tuple[list[str], list[str]]:
    """Three events waiting in the main queue, two in their back-off, two dead letters:
    (the ids the handler must see, the ids that must stay dead letters)."""
    waiting = await put(channel, main, [event(n) for n in range(3)])
    backing_off = await put(
        channel, f"{main}.retry", [event(n) for n in range(3, 5)], expiration=CLASSIC_RETRY_WAIT_S
    )
    dead = await put(channel, f"{main}.dlq", [event(n) for n in range(5, 7)], headers={"x-attempts": 3})
    return waiting + backing_off, dead


async def types_of(main: str) -> dict[str, str]:
    listed = await asyncio.to_thread(list_queues, main, "type")
    return {name: columns[0] for name, columns in listed.items()}


def quorum_types(main: str) -> dict[str, str]:
    return {main: "quorum", f"{main}.retry": "quorum", f"{main}.dlq": "quorum"}


async def test_new_queues_are_quorum_queues(settings: ServiceSettings, start_consumer: StartConsumer) -> None:
    consumer = await start_consumer(Handled(), settings)
    assert await types_of(consumer.queue_name) == quorum_types(consumer.queue_name)


async def test_classic_queues_when_quorum_queues_are_off(
    settings: ServiceSettings, start_consumer: StartConsumer
) -> None:
    consumer = await start_consumer(Handled(), settings.model_copy(update={"rabbitmq_quorum_queues": False}))
    assert set((await types_of(consumer.queue_name)).values()) == {"classic"}


async def test_classic_queues_become_quorum_queues_losing_nothing(
    settings: ServiceSettings, start_consumer: StartConsumer, channel: AbstractChannel
) -> None:
    main = await declare_classic(channel, settings)
    to_handle, dead = await fill(channel, main)
    handler = Handled()
    consumer = await start_consumer(handler, settings)

    assert await types_of(main) == quorum_types(main)  # and no holding queue or lock left
    await wait_until(lambda: _handled(handler, to_handle), within=15, what="every waiting event handled")
    assert await _ids_in(channel, f"{main}.dlq") == dead  # dead letters stay dead letters, in order
    after = await _publish_to_exchange(channel, settings, event(7))
    await wait_until(lambda: _handled(handler, [after]), within=10, what="an event published afterwards")
    assert consumer.queue is not None


async def test_replicas_starting_together_migrate_once_and_all_consume(
    settings: ServiceSettings, start_consumer: StartConsumer, channel: AbstractChannel
) -> None:
    main = await declare_classic(channel, settings)
    to_handle, dead = await fill(channel, main)
    handlers = [Handled(), Handled(), Handled()]
    await asyncio.gather(*(start_consumer(handler, settings) for handler in handlers))

    assert await types_of(main) == quorum_types(main)
    await wait_until(lambda: _handled_by_any(handlers, to_handle), within=15, what="every waiting event")
    assert await _ids_in(channel, f"{main}.dlq") == dead


async def test_the_migration_waits_for_consumers_of_the_old_queues_to_leave(
    settings: ServiceSettings,
    start_consumer: StartConsumer,
    channel: AbstractChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    main = await declare_classic(channel, settings)
    to_handle, _ = await fill(channel, main)
    old_version = await aio_pika.connect(settings.rabbitmq_url.get_secret_value())
    held: list[AbstractIncomingMessage] = []  # taken by the old replica, never acked
    old_channel = await old_version.channel()
    await old_channel.set_qos(prefetch_count=1)
    await (await old_channel.get_queue(main)).consume(held.append)
    await wait_until(lambda: _true(bool(held)), within=5, what="the old replica holding a message")
    handler = Handled()
    with caplog.at_level(logging.WARNING, logger="servicekit.consumer"):
        starting = asyncio.create_task(start_consumer(handler, settings))
        await wait_until(lambda: _true("still has 1 consumer" in caplog.text), within=10, what="a wait")
        assert await types_of(main) == {main: "classic", f"{main}.retry": "classic", f"{main}.dlq": "classic"}
        await old_version.close()  # the old replica leaves; its unacked message returns to the queue
        await asyncio.wait_for(starting, timeout=15)

    assert await types_of(main) == quorum_types(main)
    await wait_until(
        lambda: _handled(handler, to_handle), within=15, what="every waiting event, the held one too"
    )


async def test_a_migration_cut_short_is_finished_by_the_next_start(
    settings: ServiceSettings, start_consumer: StartConsumer, channel: AbstractChannel
) -> None:
    """Queues already quorum, but the holding queue still holds what was set aside."""
    main = f"{settings.queue_prefix}{CONSUMER}"
    await channel.declare_queue(f"{main}.migrating", durable=True, arguments={"x-queue-type": "quorum"})
    set_aside = await put(
        channel, f"{main}.migrating", [event(n) for n in range(2)], headers={RETURN_HEADER: main}
    )
    published_meanwhile = await put(channel, f"{main}.migrating", [event(2)])  # no header: an event
    dead = await put(channel, f"{main}.migrating", [event(3)], headers={RETURN_HEADER: f"{main}.dlq"})
    handler = Handled()
    await start_consumer(handler, settings)

    assert await types_of(main) == quorum_types(main)
    await wait_until(
        lambda: _handled(handler, set_aside + published_meanwhile), within=15, what="the held events"
    )
    assert await _ids_in(channel, f"{main}.dlq") == dead


async def test_turning_quorum_queues_off_migrates_back_to_classic(
    settings: ServiceSettings, start_consumer: StartConsumer, channel: AbstractChannel
) -> None:
    first = await start_consumer(Handled(), settings)
    await first.broker.close()
    main = first.queue_name
    waiting = await put(channel, main, [event(n) for n in range(2)])
    handler = Handled()
    await start_consumer(handler, settings.model_copy(update={"rabbitmq_quorum_queues": False}))

    assert set((await types_of(main)).values()) == {"classic"}
    await wait_until(
        lambda: _handled(handler, waiting), within=15, what="the events left in the quorum queue"
    )


async def _handled(handler: Handled, ids: list[str]) -> bool:
    return set(ids) <= set(handler.ids)


async def _handled_by_any(handlers: list[Handled], ids: list[str]) -> bool:
    return set(ids) <= {seen for handler in handlers for seen in handler.ids}


async def _true(value: bool) -> bool:
    return value


async def _ids_in(channel: AbstractChannel, queue_name: str) -> list[str]:
    """The event ids a queue holds, in order (read and put back: nacked, requeued)."""
    count = await queue_message_count(channel, queue_name)
    queue = await channel.get_queue(queue_name)
    taken = [await queue.get(no_ack=False) for _ in range(count)]
    for message in taken:
        await message.nack(requeue=True)
    return [orjson.loads(message.body)["event_id"] for message in taken]


async def _publish_to_exchange(channel: AbstractChannel, settings: ServiceSettings, body: bytes) -> str:
    exchange = await channel.get_exchange(settings.events_exchange)
    await exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "kit.happened"
    )
    return str(orjson.loads(body)["event_id"])
