"""The consumer base: own durable queue, manual ack after commit, dedupe, retries, dead letters.

Queues of a consumer named ``C`` (with the configured prefix):
- ``C``: bound to the topic exchange for the consumer's routing keys;
- ``C.retry``: a failed message waits here for its back-off (per-message TTL),
  then dead-letters back to ``C``;
- ``C.dlq``: messages that failed ``consumer_max_attempts`` times, or could not
  be parsed at all, or (quorum queues) were delivered ``RABBITMQ_DELIVERY_LIMIT``
  times to consumers that died holding them. Replay them with
  ``scripts/replay_dead_letters.py``.
Quorum or classic queues: servicekit/events/queues.py; queues declared before with other
arguments are migrated first: servicekit/events/migration.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit import hotsql
from servicekit.config import ServiceSettings
from servicekit.context import event_id_var
from servicekit.events.broker import Broker
from servicekit.events.envelope import EventEnvelope
from servicekit.events.migration import QueueMigration
from servicekit.events.outbox import OutboxWakeup
from servicekit.events.queues import ConsumerQueues, base_arguments, consumer_declarations
from servicekit.metrics import CONSUMER_LAG, EVENTS_CONSUMED
from servicekit.tracing import consumer_span

logger = logging.getLogger("servicekit.consumer")

EventHandler = Callable[[AsyncSession, EventEnvelope], Awaitable[None]]


@dataclass(frozen=True)
class OneStatement:
    """A handler's writes and the event's dedupe record as one statement, run in autocommit:
    one round trip, no BEGIN or COMMIT.

    ``sql`` takes the event id, the consumer's name and the event type as ``$1``, ``$2``, ``$3``
    (for ``claim_sql``'s dedupe insert, one of its CTEs) and ``args`` from ``$4`` on. It answers
    one row whose ``claimed`` column says whether it wrote the dedupe record; it writes its
    effects exactly when it does (they read the claim's row, or the claim theirs), so a failed
    statement writes neither and a claimed one both. Not claimed (a duplicate, or ``claim_sql``'s
    condition false: a case the statement does not cover) it wrote nothing, and the event goes
    through the consumer's transactional handler, which decides as before.
    """

    sql: str
    args: tuple[Any, ...] = ()
    writes_outbox: bool = False  # its commit wakes the relay
    on_claimed: Callable[[], None] | None = None  # after it claimed (metrics)


# The one-statement form of an event, or None: that event goes through the transactional handler.
StatementHandler = Callable[[EventEnvelope], OneStatement | None]


# A read the transactional handler needs, sent in one statement with the dedupe record: SQL of at
# most one row, its arguments from $4 on (the claim's come first), or None for no read. The row
# reaches the handler as ``session.info[CLAIMED_WITH]``, its columns all NULL when it found none.
ReadWithClaim = Callable[[EventEnvelope], tuple[str, tuple[Any, ...]] | None]
CLAIMED_WITH = "servicekit.claimed_with"


def claim_sql(processed: Table, only_if: str | None = None) -> str:
    """The dedupe record for a CTE of a ``OneStatement`` (``RETURNING event_id``; no row for a
    duplicate). ``only_if``, an SQL condition, claims only when it holds: the claim follows the
    statement's effects (``EXISTS (SELECT 1 FROM moved)``) instead of leading them."""
    columns = f"INSERT INTO {processed.fullname} (event_id, consumer, event_type)"
    conflict = "ON CONFLICT DO NOTHING RETURNING event_id"
    if only_if is None:
        return f"{columns} VALUES ($1, $2, $3) {conflict}"
    return f"{columns} SELECT $1::uuid, $2::text, $3::text WHERE {only_if} {conflict}"


ATTEMPTS_HEADER = "x-attempts"
# A consumer that could not start (broker away, queues being migrated) tries again after this.
START_RETRY_SECONDS = 2.0


class EventConsumer:
    """Consumes ``routing_keys`` into ``handler``, which runs inside one database transaction;
    or, for the events ``statement`` gives a ``OneStatement``, into that statement alone on an
    ``autocommit`` connection (the transactional handler takes what it does not claim)."""

    def __init__(
        self,
        name: str,
        routing_keys: list[str],
        handler: EventHandler,
        sessionmaker: async_sessionmaker[AsyncSession],
        processed: Table,
        broker: Broker,
        settings: ServiceSettings,
        prefetch: int = 20,
        *,
        statement: StatementHandler | None = None,
        autocommit: AsyncEngine | None = None,
        wakeup: OutboxWakeup | None = None,
        read_with_claim: ReadWithClaim | None = None,
    ) -> None:
        if statement is not None and autocommit is None:
            raise ValueError("a one-statement handler needs an autocommit engine")
        self.name = name
        self.queue_name = f"{settings.queue_prefix}{name}"
        self.queues = ConsumerQueues(self.queue_name)
        self.declarations = consumer_declarations(self.queues, settings)
        self.routing_keys = routing_keys
        self.handler = handler
        self.sessionmaker = sessionmaker
        self.processed = processed
        self.broker = broker
        self.settings = settings
        self.prefetch = prefetch
        self.statement, self.autocommit, self.wakeup = statement, autocommit, wakeup
        self.read_with_claim = read_with_claim
        self.queue: AbstractQueue | None = None
        self._channel: Any = None
        self._claim = claim_sql(processed)  # once per message: straight on asyncpg (servicekit.hotsql)

    async def start(self) -> None:
        """Declare the queues (migrated first if they changed) and start consuming.

        Retried until it works: the broker may be away, another replica may be migrating
        the queues, or the previous version's replicas may still consume the old ones.
        """
        while True:
            await self.broker.ready.wait()
            try:
                await self._start_consuming()
                return
            except Exception as exc:  # QueuesBusy, or the broker lost meanwhile: the next try may work
                logger.warning(
                    "consumer %s waits %.0fs to start: %s: %s",
                    self.name,
                    START_RETRY_SECONDS,
                    type(exc).__name__,
                    exc,
                )
                await self._close_channel()
                await asyncio.sleep(START_RETRY_SECONDS)

    async def _start_consuming(self) -> None:
        connection = self.broker.connection
        assert connection is not None
        await QueueMigration(
            connection,
            self.queues,
            self.declarations,
            holding_arguments=base_arguments(self.settings),
            exchange=self.settings.events_exchange,
            routing_keys=self.routing_keys,
        ).ensure_declared()
        # Robust: reopened, its queues re-declared and re-consumed, on whichever node the
        # broker's connection reaches after a reconnect.
        self._channel = await connection.channel(publisher_confirms=False)  # publishes go through the broker
        await self._channel.set_qos(prefetch_count=self.prefetch)
        await self._declare_topology()
        assert self.queue is not None
        await self.queue.consume(self._on_message)

    async def _declare_topology(self) -> None:
        ch = self._channel
        for declaration in self.declarations:  # the main queue comes last
            queue = await ch.declare_queue(declaration.name, durable=True, arguments=declaration.arguments)
        exchange = await ch.declare_exchange(
            self.settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for routing_key in self.routing_keys:
            await queue.bind(exchange, routing_key=routing_key)
        self.queue = queue

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            await channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = EventEnvelope.model_validate_json(message.body)
        except ValidationError:
            logger.error("unparseable message on %s dead-lettered", self.queue_name)
            EVENTS_CONSUMED.labels(self.settings.service_name, "unknown", "dead_lettered").inc()
            await message.reject(requeue=False)
            return
        token = event_id_var.set(str(event.event_id))
        try:
            with consumer_span(message.headers, event.event_type, self.queue_name):
                await self._handle(message, event)
        finally:
            event_id_var.reset(token)

    async def _handle(self, message: AbstractIncomingMessage, event: EventEnvelope) -> None:
        try:
            outcome = await _run_to_the_end(self._process_once(event))
        except Exception as exc:
            logger.warning("handling %s failed: %s: %s", event.event_type, type(exc).__name__, exc)
            await self._retry_or_dead_letter(message, event, exc)
            return
        EVENTS_CONSUMED.labels(self.settings.service_name, event.event_type, outcome).inc()
        await message.ack()

    async def _process_once(self, event: EventEnvelope) -> str:
        """Run the handler and record the event id in one transaction; skip a duplicate."""
        if self.statement is not None and (one := self.statement(event)) is not None:
            if await self._claimed_alone(one, event):
                return "processed"
        read = self.read_with_claim(event) if self.read_with_claim is not None else None
        sql, args = (self._claim, ()) if read is None else (self._claim_and_read(read[0]), read[1])
        async with self.sessionmaker() as session, session.begin():
            claimed = await hotsql.fetchrow(session, sql, event.event_id, self.name, event.event_type, *args)
            if claimed is None:
                return "duplicate"
            if read is not None:
                session.info[CLAIMED_WITH] = claimed
            await self.handler(session, event)
        return "processed"

    def _claim_and_read(self, read: str) -> str:
        return (
            f"WITH claimed AS ({self._claim}) SELECT r.* FROM claimed LEFT JOIN LATERAL ({read}) AS r ON true"
        )

    async def _claimed_alone(self, one: OneStatement, event: EventEnvelope) -> bool:
        """Run ``one`` in autocommit; whether it claimed the event (and so did its writes)."""
        assert self.autocommit is not None
        async with self.autocommit.connect() as connection:
            args = (event.event_id, self.name, event.event_type, *one.args)
            row = await hotsql.fetchrow(connection, one.sql, *args)
        if row is None or not row["claimed"]:
            return False
        if one.writes_outbox and self.wakeup is not None:
            self.wakeup.notify()
        if one.on_claimed is not None:
            one.on_claimed()
        return True

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, event: EventEnvelope, exc: Exception
    ) -> None:
        attempts = int(str((message.headers or {}).get(ATTEMPTS_HEADER, 0) or 0)) + 1
        headers = dict(message.headers or {})
        headers[ATTEMPTS_HEADER] = attempts
        headers["x-last-error"] = f"{type(exc).__name__}: {exc}"[:500]
        if attempts >= self.settings.consumer_max_attempts:
            target, expiration, outcome = self.queues.dlq, None, "dead_lettered"
        else:
            backoff_ms = self.settings.consumer_retry_base_ms * 2 ** (attempts - 1)
            target, expiration, outcome = self.queues.retry, backoff_ms / 1000, "retried"
        republished = aio_pika.Message(
            body=message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
            headers=headers,
            expiration=expiration,
        )
        try:  # on the broker's confirming channel, renewed if RabbitMQ refuses it
            await self.broker.publish(republished, target, to_queue=True)
        except Exception as publish_failure:  # back to the queue: it is handled again later
            logger.warning("%s not moved to %s: %s", event.event_type, target, type(publish_failure).__name__)
            await message.nack(requeue=True)
            return
        EVENTS_CONSUMED.labels(self.settings.service_name, event.event_type, outcome).inc()
        await message.ack()

    async def report_depths(self) -> None:
        """Set the lag gauge for the main queue and its dead-letter queue."""
        if self._channel is None:
            return
        service = self.settings.service_name
        for name in (self.queues.main, self.queues.dlq):
            CONSUMER_LAG.labels(service, name).set(await queue_message_count(self._channel, name))


async def queue_message_count(channel: Any, queue_name: str) -> int:
    """Messages ready in a queue, asked of the broker now.

    Not ``declare_queue(passive=True)`` on a robust channel: aio-pika answers
    that from the first declaration it cached, so the count never changes.
    """
    underlay = await channel.get_underlay_channel()
    declared = await underlay.queue_declare(queue_name, passive=True)
    return int(declared.message_count or 0)


def _run_to_the_end(work: Awaitable[str]) -> Awaitable[str]:
    """``work``, shielded from the cancellation of this delivery's task.

    aiormq cancels the task of every delivery under way when its broker connection is lost (a
    RabbitMQ node dies). A handler cancelled half way would leave its outside effects half done
    (notification: a mail sent, not yet recorded as sent), and the redelivered copy would do
    them again. Shielded, the handler and its transaction finish; the copy's dedupe insert waits
    for that commit (PostgreSQL's unique index) and finds the event handled. The outcome of work
    nobody awaits any more is fetched here (a failure is retried by the redelivery)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return asyncio.shield(task)
