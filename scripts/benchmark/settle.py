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
UNPUBLISHED = "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"


async def backlog(dsn: str | None, amqp_url: str, queue_prefix: str) -> int:
    """Unpublished outbox events plus messages waiting in the consumer queues."""
    waiting = 0
    if dsn:
        connection = await asyncpg.connect(dsn)
        try:
            for schema in OUTBOXES:
                waiting += int(await connection.fetchval(UNPUBLISHED.format(schema=schema)))
        finally:
            await connection.close()
    broker = await aio_pika.connect(amqp_url)  # not robust: passive declares are not cached
    try:
        for name in CONSUMERS:
            for queue in (f"{queue_prefix}{name}.events", f"{queue_prefix}{name}.events.retry"):
                channel = await broker.channel()
                try:
                    declared = await channel.declare_queue(queue, passive=True)
                    waiting += declared.declaration_result.message_count or 0
                except aio_pika.exceptions.ChannelClosed:  # no such queue (a consumer that never ran)
                    pass
    finally:
        await broker.close()
    return waiting


def wait_quiet(dsn: str | None, amqp_url: str, queue_prefix: str, limit_seconds: float = 180.0) -> None:
    """Return once nothing is waiting twice in a row (a second apart), or after ``limit_seconds``."""
    deadline, quiet, waited = time.monotonic() + limit_seconds, 0, False
    while time.monotonic() < deadline:
        waiting = asyncio.run(backlog(dsn, amqp_url, queue_prefix))
        quiet = quiet + 1 if waiting == 0 else 0
        if quiet >= 2:
            return
        if waiting and not waited:
            say(f"  (waiting for {waiting} events of the previous scenario to be handled)")
            waited = True
        time.sleep(1.0)
    say(f"  (still busy after {limit_seconds:.0f} s; measuring anyway)")
