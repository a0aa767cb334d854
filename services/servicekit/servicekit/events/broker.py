"""The RabbitMQ connection: robust, declared once, and tolerant of a broker that is down."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection

from servicekit.config import ServiceSettings

logger = logging.getLogger("servicekit.broker")


class Broker:
    """Holds the robust connection, a confirming channel and the topic exchange.

    ``start()`` returns at once; the connection is made in the background and
    retried until the broker answers, so a service starts even while RabbitMQ is down.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractRobustChannel | None = None
        self.exchange: AbstractExchange | None = None
        self.ready = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def _connect_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._connect()
                return
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                logger.warning("RabbitMQ not reachable (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _connect(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.settings.rabbitmq_url.get_secret_value(),
            timeout=5,
            client_properties={"connection_name": self.settings.service_name},
        )
        channel = await self.connection.channel(publisher_confirms=True)
        assert isinstance(channel, AbstractRobustChannel)
        self.channel = channel
        self.exchange = await channel.declare_exchange(
            self.settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self.ready.set()
        logger.info("connected to RabbitMQ, exchange %s", self.settings.events_exchange)

    @property
    def is_connected(self) -> bool:
        connection = self.connection
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()  # cleared while a robust connection reconnects
            and self.ready.is_set()
        )

    async def check(self) -> None:
        """Raise when the broker connection is not usable (for readiness)."""
        if not self.is_connected:
            raise ConnectionError("RabbitMQ is not connected")

    async def close(self) -> None:
        if self._connect_task:
            self._connect_task.cancel()
            await asyncio.gather(self._connect_task, return_exceptions=True)
        if self.connection is not None:
            await self.connection.close()
