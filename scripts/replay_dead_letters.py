#!/usr/bin/env python3
"""Move dead-lettered messages from a consumer's ``<queue>.dlq`` back to ``<queue>``.

    python scripts/replay_dead_letters.py notification-service.events            # all (at most 1000)
    python scripts/replay_dead_letters.py booking-service.events --max 10
    python scripts/replay_dead_letters.py payment-service.events --dry-run       # count only

Bounded: it moves at most ``--max`` messages and never more than the dead-letter
queue held when it started, so a message that fails again (and returns to the
.dlq) is not replayed in a loop. Each message is republished persistent with
publisher confirms, its retry counter reset, and acked on the .dlq only after the
broker confirmed the copy (a crash in between duplicates, which consumers skip by
event id; it never loses one). The broker comes from RABBITMQ_URL (or --url): one AMQP
URL, or a cluster's nodes as a comma-separated list, of which the first that answers is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TextIO

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from servicekit.events.cluster import parse_node_urls

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Headers the consumer's retry logic reads; a replayed message starts afresh.
RESET_HEADERS = (
    "x-attempts",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
)


def say(text: str, stream: TextIO = sys.stdout) -> None:
    stream.write(text + "\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queue", help="the consumer's main queue, e.g. notification-service.events")
    parser.add_argument("--max", type=int, default=1000, help="move at most this many (default 1000)")
    parser.add_argument("--dry-run", action="store_true", help="only report how many are waiting")
    parser.add_argument("--url", default=os.environ.get("RABBITMQ_URL", DEFAULT_URL), help="AMQP URL(s)")
    args = parser.parse_args(argv)
    if args.max < 1:
        parser.error("--max must be at least 1")
    try:
        parse_node_urls(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def replayed_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in RESET_HEADERS}
    headers["x-replayed"] = int(str(headers.get("x-replayed", 0))) + 1
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def _queues(channel: AbstractChannel, queue: str) -> tuple[AbstractQueue, int]:
    """The .dlq and how many it holds; both queues must already exist (declared by the consumer)."""
    await channel.declare_queue(queue, passive=True)
    dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
    return dlq, int(dlq.declaration_result.message_count or 0)


async def connect_first_node(urls: str) -> AbstractConnection:
    """A connection to the first node of the list that answers (the last one's error otherwise)."""
    *others, last = parse_node_urls(urls)
    for url in others:
        try:
            return await aio_pika.connect(url, timeout=10)
        except (OSError, aio_pika.exceptions.AMQPConnectionError):
            continue
    return await aio_pika.connect(last, timeout=10)


async def replay(url: str, queue: str, limit: int, dry_run: bool = False) -> int:
    """Move up to ``limit`` messages from ``queue``.dlq to ``queue``; returns how many moved."""
    connection = await connect_first_node(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dlq, waiting = await _queues(channel, queue)
        say(f"{queue}.dlq holds {waiting} message(s)")
        if dry_run:
            return 0
        moved = 0
        while moved < min(limit, waiting):
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            await channel.default_exchange.publish(replayed_copy(message), routing_key=queue)
            await message.ack()
            moved += 1
        return moved


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        moved = asyncio.run(replay(args.url, args.queue, args.max, args.dry_run))
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        say(f"no such queue: {exc}", sys.stderr)
        return 2
    except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        say(f"cannot reach RabbitMQ: {type(exc).__name__}", sys.stderr)
        return 3
    if not args.dry_run:
        say(f"moved {moved} message(s) from {args.queue}.dlq back to {args.queue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
