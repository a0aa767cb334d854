"""Re-declaring a consumer's queues whose arguments changed (classic to quorum), losing nothing.

RabbitMQ refuses to declare a queue that exists with other arguments
(PRECONDITION_FAILED, "inequivalent arg"): a classic queue cannot become a quorum queue
in place, nor take a new delivery limit. At start-up, before it consumes, a consumer
whose queues ``C``, ``C.retry``, ``C.dlq`` differ from what it declares moves them aside:

1. under a lock held on the broker (an exclusive queue, ``C.migration-lock``: one
   replica migrates while the others wait, and a replica that dies releases it), and only
   once no consumer is attached to them (replicas of the previous version finish first);
2. a holding queue ``C.migrating`` of the new type is bound like ``C``, so events
   published meanwhile wait there;
3. each differing queue is unbound, emptied into it (every copy confirmed before its
   original is acked), and deleted once it is seen empty and unused;
4. the queues are declared anew, the holding queue is unbound, and its messages go back
   to the queue they came from (a message waiting in ``C.retry`` goes to ``C`` at once:
   its back-off is cut short, its attempts are kept), then it is deleted once empty.

A crash at any step leaves a state the next start-up recognises (a queue that differs, or
a holding queue) and resumes. A crash between a copy's confirm and the original's ack, and
an event routed to both ``C`` and the holding queue, make duplicates, which consumers skip
by event id; nothing is dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, HeadersType
from aio_pika.exceptions import (
    AMQPError,
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
)
from aiormq.exceptions import ChannelLockedResource

from servicekit.events.queues import ConsumerQueues, QueueArguments, QueueDeclaration

logger = logging.getLogger("servicekit.consumer")
RETURN_HEADER = "x-migration-return-to"
# Emptying a queue and deleting it "if empty" races with messages still arriving (an event
# routed to the old queue); after this many rounds the migration gives up and retries later.
MAX_EMPTYING_ROUNDS = 5
Copier = Callable[[AbstractIncomingMessage], tuple[str, aio_pika.Message]]


class QueuesBusy(Exception):
    """The queues cannot be migrated now (another replica is at it, or consumers are still
    attached to the old ones); the consumer tries again later."""


@dataclass(frozen=True)
class QueueMigration:
    connection: AbstractConnection
    queues: ConsumerQueues
    declarations: list[QueueDeclaration]  # the dead-letter, retry and main queues
    holding_arguments: QueueArguments
    exchange: str
    routing_keys: list[str]

    async def ensure_declared(self) -> None:
        """Declare the queues; first migrate those that exist with other arguments."""
        if not await self._differing() and not await self._exists(self.queues.holding):
            return
        async with self._lock():
            differing = await self._differing()  # again: another replica may have done it
            for name, reason in differing.items():
                logger.warning("migrating queue %s, declared before with other arguments: %s", name, reason)
            await self._refuse_while_consumed(list(differing))
            await self._hold_new_events()
            q = self.queues
            for name, return_to in ((q.retry, q.main), (q.main, q.main), (q.dlq, q.dlq)):
                if name in differing:
                    await self._empty_and_delete(name, return_to)
            await self._declare_new()
            await self._return_held()

    async def _differing(self) -> dict[str, str]:
        """Declares each queue (creating what is missing); the broker's refusals, by queue."""
        refusals = {}
        for declaration in self.declarations:
            try:
                async with self._channel() as channel:
                    await channel.declare_queue(
                        declaration.name, durable=True, arguments=declaration.arguments
                    )
            except ChannelPreconditionFailed as exc:
                if "inequivalent arg" not in str(exc):
                    raise
                refusals[declaration.name] = str(exc)
        return refusals

    async def _exists(self, name: str) -> bool:
        try:
            async with self._channel() as channel:
                await channel.get_queue(name)  # a passive declaration
        except ChannelNotFoundEntity:
            return False
        return True

    @contextlib.asynccontextmanager
    async def _lock(self) -> AsyncIterator[None]:
        async with self._channel() as channel:
            try:
                await channel.declare_queue(
                    self.queues.lock, exclusive=True, arguments={"x-queue-type": "classic"}
                )
            except ChannelLockedResource as exc:
                raise QueuesBusy(f"another process is migrating the queues of {self.queues.main}") from exc
            try:
                yield
            finally:
                # A lost connection has taken the (exclusive) lock with it already.
                with contextlib.suppress(AMQPError, ChannelInvalidStateError):
                    await channel.queue_delete(self.queues.lock)

    async def _refuse_while_consumed(self, names: list[str]) -> None:
        async with self._channel() as channel:
            for name in names:
                declared = (await channel.get_queue(name)).declaration_result
                if declared is not None and declared.consumer_count:
                    raise QueuesBusy(f"{name} still has {declared.consumer_count} consumer(s)")

    async def _hold_new_events(self) -> None:
        async with self._channel() as channel:
            await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            holding = await channel.declare_queue(
                self.queues.holding, durable=True, arguments=self.holding_arguments
            )
            for key in self.routing_keys:
                await holding.bind(self.exchange, routing_key=key)

    async def _empty_and_delete(self, name: str, return_to: str) -> None:
        if name == self.queues.main:
            await self._unbind(name)  # its events go to the holding queue now
        moved = 0
        for _ in range(MAX_EMPTYING_ROUNDS):
            moved += await self._move(name, lambda message: (self.queues.holding, held(message, return_to)))
            if await self._delete_if_empty(name):
                logger.warning("queue %s: %d message(s) set aside, deleted to be re-declared", name, moved)
                return
        raise QueuesBusy(f"{name} keeps receiving messages")

    async def _declare_new(self) -> None:
        async with self._channel() as channel:
            for declaration in self.declarations:
                queue = await channel.declare_queue(
                    declaration.name, durable=True, arguments=declaration.arguments
                )
            for key in self.routing_keys:  # the main queue, declared last
                await queue.bind(self.exchange, routing_key=key)

    async def _return_held(self) -> None:
        await self._unbind(self.queues.holding)
        moved = 0
        for _ in range(MAX_EMPTYING_ROUNDS):
            moved += await self._move(
                self.queues.holding, lambda message: returned(message, self.queues.main)
            )
            if await self._delete_if_empty(self.queues.holding):
                logger.warning("queues of %s migrated, %d message(s) put back", self.queues.main, moved)
                return
        raise QueuesBusy(f"{self.queues.holding} keeps receiving messages")

    async def _unbind(self, name: str) -> None:
        async with self._channel() as channel:
            queue = await channel.get_queue(name)
            for key in self.routing_keys:
                await queue.unbind(self.exchange, routing_key=key)

    async def _move(self, source: str, copy: Copier) -> int:
        """Move every ready message of ``source``: each copy confirmed, then the original acked."""
        moved = 0
        async with self._channel() as channel:
            queue = await channel.get_queue(source)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                target, copied = copy(message)
                await channel.default_exchange.publish(copied, routing_key=target, mandatory=True)
                await message.ack()
                moved += 1
        return moved

    async def _delete_if_empty(self, name: str) -> bool:
        """Delete the queue if it holds nothing and nobody consumes it.

        Checked, then deleted: quorum queues refuse ``if-empty``/``if-unused`` deletes. Nothing
        can arrive in between: the queue is unbound, nothing consumes it, and the only queue
        that dead-letters into another one's (``C.retry`` into ``C``) was handled first.
        """
        async with self._channel() as channel:
            declared = (await channel.get_queue(name)).declaration_result
            if declared.consumer_count:
                raise QueuesBusy(f"{name} got a consumer")
            if declared.message_count:
                return False  # a message arrived since it was emptied
            await channel.queue_delete(name)
        return True

    def _channel(self) -> aio_pika.Channel:
        """A plain channel on the service's connection: never restored after a reconnect (a
        migration cut short starts over), and raising on a mandatory message nobody took."""
        return aio_pika.Channel(self.connection, publisher_confirms=True, on_return_raises=True)


def held(message: AbstractIncomingMessage, return_to: str) -> aio_pika.Message:
    """A copy for the holding queue that remembers where it goes back, and never expires there
    (a retry's back-off is its expiration)."""
    return _copy(message, {**(message.headers or {}), RETURN_HEADER: return_to})


def returned(message: AbstractIncomingMessage, main_queue: str) -> tuple[str, aio_pika.Message]:
    """Where a held message goes back (an event published while held: the main queue), and the copy."""
    headers = dict(message.headers or {})
    target = str(headers.pop(RETURN_HEADER, main_queue))
    return target, _copy(message, headers)


def _copy(message: AbstractIncomingMessage, headers: HeadersType) -> aio_pika.Message:
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )
