"""scripts/replay_dead_letters.py against the real RabbitMQ: moves what waits, bounded, resets retries."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from yarl import URL

from servicekit.testing import wait_until

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture()
async def channel() -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        yield await connection.channel()


@pytest.fixture()
async def queue_with_dead_letters(channel: AbstractChannel) -> str:
    """A consumer-shaped pair of queues (expiring) whose .dlq holds three failed events."""
    name = f"test.ops-{uuid.uuid4().hex[:8]}.events"
    expiring = {"x-expires": 120_000}
    await channel.declare_queue(f"{name}.dlq", durable=True, arguments=expiring)
    await channel.declare_queue(name, durable=True, arguments=expiring)
    for number in range(3):
        message = aio_pika.Message(
            body=f'{{"n": {number}}}'.encode(),
            message_id=f"event-{number}",
            headers={"x-attempts": 5, "x-last-error": "SMTPServerDisconnected: down"},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(message, routing_key=f"{name}.dlq")
    return name


def replay(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = repo_root / "scripts/replay_dead_letters.py"
    env = {**os.environ, "RABBITMQ_URL": RABBITMQ_URL}
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


async def depth(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return int(queue.declaration_result.message_count or 0)


async def test_replay_moves_at_most_max_and_resets_the_attempts(
    channel: AbstractChannel, queue_with_dead_letters: str, repo_root: Path
) -> None:
    name = queue_with_dead_letters
    await wait_until(lambda: _depth_is(channel, f"{name}.dlq", 3), within=5)
    result = await asyncio.to_thread(replay, repo_root, name, "--max", "2")
    assert result.returncode == 0, result.stderr
    assert "moved 2 message(s)" in result.stdout
    await wait_until(lambda: _depth_is(channel, name, 2), within=5, what="two messages back in the queue")
    assert await depth(channel, f"{name}.dlq") == 1
    first = await (await channel.declare_queue(name, passive=True)).get(no_ack=True)
    assert first is not None
    assert (first.message_id, first.body) == ("event-0", b'{"n": 0}')
    headers: dict[str, Any] = dict(first.headers or {})
    assert "x-attempts" not in headers
    assert headers["x-replayed"] == 1


async def test_dry_run_moves_nothing(
    channel: AbstractChannel, queue_with_dead_letters: str, repo_root: Path
) -> None:
    name = queue_with_dead_letters
    await wait_until(lambda: _depth_is(channel, f"{name}.dlq", 3), within=5)
    result = await asyncio.to_thread(replay, repo_root, name, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"{name}.dlq holds 3 message(s)" in result.stdout
    assert await depth(channel, f"{name}.dlq") == 3


async def test_a_node_list_is_served_by_the_first_node_that_answers(
    channel: AbstractChannel, queue_with_dead_letters: str, repo_root: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed: a dead node
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    nodes = f"{URL(RABBITMQ_URL).with_port(dead_port)},{RABBITMQ_URL}"
    name = queue_with_dead_letters
    await wait_until(lambda: _depth_is(channel, f"{name}.dlq", 3), within=5)
    result = await asyncio.to_thread(replay, repo_root, name, "--dry-run", "--url", nodes)
    assert result.returncode == 0, result.stderr
    assert f"{name}.dlq holds 3 message(s)" in result.stdout


async def test_an_unknown_queue_is_an_error(repo_root: Path) -> None:
    result = await asyncio.to_thread(replay, repo_root, f"no-such-{uuid.uuid4().hex[:8]}.events")
    assert result.returncode == 2
    assert "no such queue" in result.stderr


async def _depth_is(channel: AbstractChannel, name: str, expected: int) -> bool:
    return await depth(channel, name) == expected
