"""Watch what reaches the exchange, from a test: an exclusive queue bound to routing keys;
and ask a RabbitMQ node what it holds (``rabbitmqctl``)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage


class RabbitSpy:
    """Collects every message published to ``exchange`` under ``routing_keys``."""

    def __init__(self, url: str, exchange: str, routing_keys: list[str]) -> None:
        self.url, self.exchange_name, self.routing_keys = url, exchange, routing_keys
        self.messages: list[dict[str, Any]] = []
        self._connection: Any = None

    async def __aenter__(self) -> RabbitSpy:
        self._connection = await aio_pika.connect_robust(self.url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in self.routing_keys:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._collect)
        return self

    async def _collect(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            body = orjson.loads(message.body)
            body["_delivery_mode"] = int(message.delivery_mode or 0)
            self.messages.append(body)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event_type") == event_type]

    async def publish(self, routing_key: str, body: dict[str, Any]) -> None:
        """Publish a raw event (for consumer tests), persistent."""
        channel = await self._connection.channel()
        exchange = await channel.get_exchange(self.exchange_name)
        await exchange.publish(
            aio_pika.Message(orjson.dumps(body, default=str), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
        )
        await channel.close()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0)
        await self._connection.close()


def list_queues(
    prefix: str,
    *columns: str,
    ctl: Sequence[str] = ("rabbitmqctl",),
    env: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """``rabbitmqctl list_queues name <columns>`` for the queues named ``prefix...``: what the
    broker itself reports (the queue's type, its leader), not what a client declared. ``ctl`` is
    the command that asks (by default the shared broker's), ``env`` its environment."""
    listed = subprocess.run(
        [*ctl, "list_queues", "--quiet", "--no-table-headers", "name", *columns],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env=env,
    ).stdout
    rows = [line.split("\t") for line in listed.splitlines()]
    return {row[0]: row[1:] for row in rows if row[0].startswith(prefix)}
