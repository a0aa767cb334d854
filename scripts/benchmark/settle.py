"""Wait for the system to be quiet before a timed scenario.

Every scenario leaves work behind it: its events are still being relayed and consumed
(the clean-up's cancellations alone mail 800 notifications). Measured while that runs,
the next scenario shares the two cores with the previous one's aftermath, and its
figures move by a factor of two between runs. So before each timing the benchmark
waits (bounded) until every outbox is published and every consumer queue is empty.
"""

from __future__ import annotations

import asyncio
import time

import aio_pika
import asyncpg
from report import say

OUTBOXES = ("auth", "booking", "payment")
CONSUMERS = ("booking-service", "payment-service", "notification-service")
UNPUBLISHED = " + ".join(
    f"(SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL)" for schema in OUTBOXES
)


async def _queued(broker: aio_pika.abc.AbstractConnection, queue_prefix: str) -> int:
    """Messages waiting in the consumer queues (a queue that does not exist counts 0)."""
    waiting = 0
    for name in CONSUMERS:
        for queue in (f"{queue_prefix}{name}.events", f"{queue_prefix}{name}.events.retry"):
            channel = await broker.channel()  # a failed passive declare closes its channel
            try:
                declared = await channel.declare_queue(queue, passive=True)
                waiting += declared.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                continue
            await channel.close()
    return waiting


async def _wait_quiet(dsn: str | None, amqp_url: str, queue_prefix: str, limit_seconds: float) -> None:
    deadline, quiet, told = time.monotonic() + limit_seconds, 0, False
    database = await asyncpg.connect(dsn) if dsn else None
    broker = await aio_pika.connect(amqp_url)  # not robust: passive declares are not cached
    try:
        while time.monotonic() < deadline:
            waiting = await _queued(broker, queue_prefix)
            if database is not None:
                waiting += int(await database.fetchval(f"SELECT {UNPUBLISHED}"))
            quiet = quiet + 1 if waiting == 0 else 0
            if quiet >= 2:
                return
            if waiting and not told:
                say(f"  (waiting for {waiting} events of the previous scenario to be handled)")
                told = True
            await asyncio.sleep(1.0)
        say(f"  (still busy after {limit_seconds:.0f} s; measuring anyway)")
    finally:
        await broker.close()
        if database is not None:
            await database.close()


def wait_quiet(dsn: str | None, amqp_url: str, queue_prefix: str, limit_seconds: float = 180.0) -> None:
    """Return once nothing has waited twice in a row (a second apart), or after ``limit_seconds``."""
    asyncio.run(_wait_quiet(dsn, amqp_url, queue_prefix, limit_seconds))
