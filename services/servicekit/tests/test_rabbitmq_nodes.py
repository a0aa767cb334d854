"""RABBITMQ_URL as a list of nodes, against the real RabbitMQ: each "node" is a TCP proxy to the
shared broker that the test cuts (the broker itself is never touched). The broker connection
starts on the first node that answers, moves to the next one when its node is lost, and its
consumers and confirmed publishing carry on there."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
from servicekit.events.cluster import node_label
from servicekit.events.consumer import EventConsumer
from servicekit.events.envelope import EventEnvelope
from servicekit.metrics import EVENTS_CONSUMED
from servicekit.testing import TcpProxy, wait_until


@pytest.fixture
async def nodes(settings: ServiceSettings) -> AsyncIterator[list[TcpProxy]]:
    """Two "nodes": proxies to the shared broker, listening."""
    broker = URL(settings.rabbitmq_url.get_secret_value())
    proxies = [TcpProxy(broker.host or "127.0.0.1", broker.port or 5672) for _ in range(2)]
    for proxy in proxies:
        await proxy.start()
    yield proxies
    for proxy in proxies:
        await proxy.cut()


def url_of(settings: ServiceSettings, proxy: TcpProxy) -> URL:
    return URL(settings.rabbitmq_url.get_secret_value()).with_port(proxy.listen_port)


def on_nodes(settings: ServiceSettings, proxies: list[TcpProxy]) -> ServiceSettings:
    listed = ",".join(str(url_of(settings, proxy)) for proxy in proxies)
    return settings.model_copy(update={"rabbitmq_url": settings.rabbitmq_url.__class__(listed)})


class Handled:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.ids.add(str(event.event_id))


def an_event() -> tuple[str, aio_pika.Message]:
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "event_type": "kit.happened",
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "kit-test",
        "version": 1,
        "data": {},
    }
    return event_id, aio_pika.Message(orjson.dumps(body), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def test_the_broker_starts_on_the_first_node_that_answers(
    settings: ServiceSettings, nodes: list[TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    down, up = nodes
    await down.cut()  # nothing listens on its port any more
    broker = Broker(on_nodes(settings, [down, up]))
    with caplog.at_level(logging.INFO):
        broker.start()
        try:
            await wait_until(lambda: _connected(broker), within=15, what="a connection to the second node")
            assert broker.node == node_label(url_of(settings, up))
        finally:
            await broker.close()
    password = URL(settings.rabbitmq_url.get_secret_value()).password
    assert f":{password}@" not in caplog.text  # nodes are logged as host:port
    assert f"node {node_label(url_of(settings, down))} lost or not reachable" in caplog.text


async def test_a_lost_node_is_left_for_the_next_one_where_consumers_and_confirms_carry_on(
    settings: ServiceSettings,
    nodes: list[TcpProxy],
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, object],
) -> None:
    first, second = nodes
    handler = Handled()
    broker, consumer, _ = _consuming_on(settings, nodes, handler, sessionmaker, tables)
    try:
        await consumer.start()
        assert broker.node == node_label(url_of(settings, first))
        before = await wait_until(lambda: _published(broker), within=10, what="a confirmed publish")
        await wait_until(lambda: _handled(handler, before), within=10, what="an event before the loss")

        await first.cut()
        await wait_until(lambda: _on(broker, url_of(settings, second)), within=15, what="the second node")
        after = await wait_until(lambda: _published(broker), within=10, what="a publish on the second node")
        await wait_until(lambda: _handled(handler, after), within=15, what="an event on the second node")

        await first.start()  # the list is walked round: the first node again when the second goes
        await second.cut()
        await wait_until(lambda: _on(broker, url_of(settings, first)), within=15, what="the first node again")
        again = await wait_until(lambda: _published(broker), within=10, what="a publish on the first again")
        await wait_until(lambda: _handled(handler, again), within=15, what="an event back on the first node")
    finally:
        await broker.close()


def _consuming_on(
    settings: ServiceSettings,
    nodes: list[TcpProxy],
    handler: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, object],
) -> tuple[Broker, EventConsumer, ServiceSettings]:
    """A started Broker on the node list and a consumer of ``kit.#`` into ``handler`` (not started)."""
    listed = on_nodes(settings, nodes)
    broker = Broker(listed)
    consumer = EventConsumer(
        "kit.events", ["kit.#"], handler, sessionmaker, tables["processed"], broker, listed
    )
    broker.start()
    return broker, consumer, listed


async def _published(broker: Broker) -> str | None:
    """Publish as the outbox relay does (confirmed, or an error: a round to try again); its id."""
    event_id, message = an_event()
    try:
        await broker.publish(message, routing_key="kit.happened")
    except (ConnectionError, aio_pika.exceptions.AMQPError, RuntimeError):
        return None
    return event_id


async def _connected(broker: Broker) -> bool:
    return broker.is_connected


async def _on(broker: Broker, url: URL) -> bool:
    return broker.is_connected and broker.node == node_label(url)


async def _handled(handler: Handled, event_id: str) -> bool:
    return event_id in handler.ids


class HeldHandler:
    """Handles each event once it is let go; counts how often it began and how often it ended."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.ended: list[str] = []
        self.go = asyncio.Event()

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.began.append(str(event.event_id))
        await self.go.wait()
        self.ended.append(str(event.event_id))


async def test_a_handler_under_way_when_its_node_is_lost_finishes_and_is_not_run_again(
    settings: ServiceSettings,
    nodes: list[TcpProxy],
    sessionmaker: async_sessionmaker[AsyncSession],
    tables: dict[str, object],
) -> None:
    first, second = nodes
    handler = HeldHandler()
    broker, consumer, listed = _consuming_on(settings, nodes, handler, sessionmaker, tables)
    duplicates = EVENTS_CONSUMED.labels(listed.service_name, "kit.happened", "duplicate")
    try:
        await consumer.start()
        event_id = await wait_until(lambda: _published(broker), within=10, what="a confirmed publish")
        await wait_until(lambda: _began(handler, event_id), within=10, what="the handler under way")
        seen_twice = duplicates._value.get()

        await first.cut()  # the delivery's channel is gone: its task is cancelled
        await wait_until(lambda: _on(broker, url_of(settings, second)), within=15, what="the second node")
        handler.go.set()
        await wait_until(lambda: _counted(duplicates, seen_twice), within=15, what="the redelivery skipped")
    finally:
        await broker.close()
    assert handler.began == handler.ended == [event_id]  # finished once, never begun again


async def _began(handler: HeldHandler, event_id: str) -> bool:
    return event_id in handler.began


async def _counted(counter: Any, before: float) -> bool:
    return bool(counter._value.get() > before)
