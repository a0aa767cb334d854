"""The RabbitMQ connection: robust, on any node of the cluster, tolerant of a broker that is down."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
from pamqp.commands import Basic

from servicekit.config import ServiceSettings
from servicekit.events.cluster import NodeListConnection, parse_node_urls

logger = logging.getLogger("servicekit.broker")
# Between two attempts to reach a node (after the first one, made at once when a
# connection is lost): a dead node's successor in the list is tried right away.
RECONNECT_INTERVAL_SECONDS = 1


class Broker:
    """Holds the robust connection, a confirming channel and the topic exchange.

    ``start()`` returns at once; the connection is made in the background, to the
    first node of ``RABBITMQ_URL`` that answers, and retried until one does, so a
    service starts even while RabbitMQ is down. A lost connection moves to the next node.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.connection: NodeListConnection | None = None
        self.channel: AbstractRobustChannel | None = None
        self.exchange: AbstractExchange | None = None
        self.ready = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()

    def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def _connect_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._connect()
                return
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                # Reached a node but lost it before the exchange was declared: start afresh.
                logger.warning("RabbitMQ set-up failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _connect(self) -> None:
        """Connect (waiting, walking the node list, until a node answers), then declare."""
        self.connection = NodeListConnection(
            parse_node_urls(self.settings.rabbitmq_url.get_secret_value()),
            client_properties={"connection_name": self.settings.service_name},
            reconnect_interval=RECONNECT_INTERVAL_SECONDS,
            fail_fast=False,
        )
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        await self.connection.connect(timeout=5)
        await self._open_channel()
        self.ready.set()
        logger.info(
            "connected to RabbitMQ node %s, exchange %s", self.connection.node, self.settings.events_exchange
        )

    async def _open_channel(self) -> None:
        """The confirming channel publishers use, and the topic exchange declared on it."""
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=True)
        assert isinstance(channel, AbstractRobustChannel)
        self.exchange = await channel.declare_exchange(
            self.settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self.channel = channel

    async def publish(self, message: aio_pika.Message, routing_key: str, *, to_queue: bool = False) -> None:
        """Publish to the events exchange (or, ``to_queue``, straight to the queue named
        ``routing_key``) and insist on the broker's Basic.Ack; anything else raises.

        Not mandatory: an event nobody subscribes to (yet) is dropped by the topic exchange
        by design, and must not block the outbox.
        """
        channel, exchange = self.channel, self.exchange
        if channel is None or exchange is None or not self.is_connected:
            raise ConnectionError("RabbitMQ is not connected")
        target = channel.default_exchange if to_queue else exchange
        try:
            confirmation = await target.publish(message, routing_key=routing_key, mandatory=False, timeout=10)
        except aio_pika.exceptions.DeliveryError:  # a Basic.Nack
            await self._renew_channel(channel)
            raise
        if not isinstance(confirmation, Basic.Ack):
            raise ConnectionError(f"publish not confirmed: {type(confirmation).__name__}")

    async def _renew_channel(self, refused: AbstractRobustChannel) -> None:
        """Publish on a new channel from now on, after ``refused`` was nacked.

        RabbitMQ 3.10 can leave a channel that first published to a quorum queue while the
        queue's leader was being elected (just after a node loss) nacking every later publish
        to that queue; a new channel is not affected. A nack for any other reason costs a
        channel, no more.
        """
        async with self._renewing:
            if self.channel is not refused:  # renewed already, by another refused publish
                return
            await self._open_channel()
            await refused.close()
        logger.warning("a publish was refused (nacked) by RabbitMQ; publishing on a new channel")

    def _on_reconnect(self, connection: AbstractRobustConnection | None) -> None:
        logger.info("reconnected to RabbitMQ node %s", self.node)

    @property
    def node(self) -> str | None:
        """``host:port`` of the node the connection is on (or tries next)."""
        return self.connection.node if self.connection is not None else None

    async def _drop_connection(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close()

    @property
    def is_connected(self) -> bool:
        connection, channel = self.connection, self.channel
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()  # cleared while a robust connection reconnects
            and self.ready.is_set()
            and channel is not None
            and not channel.is_closed  # set again only once restored after a reconnect
        )

    async def check(self) -> None:
        """Raise when the broker connection is not usable (for readiness)."""
        if not self.is_connected:
            raise ConnectionError("RabbitMQ is not connected")

    async def close(self) -> None:
        if self._connect_task:
            self._connect_task.cancel()
            await asyncio.gather(self._connect_task, return_exceptions=True)
        await self._drop_connection()
