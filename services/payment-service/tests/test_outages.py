"""Dependencies down: booking-service (fail fast, charge nothing) and RabbitMQ (the outbox waits).

Each test starts its own payment-service, alone: the module uses no shared app,
so no other outbox relay can publish what the test expects to be held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from servicekit.testing import TcpProxy, wait_until

Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung booking-service)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def test_booking_service_down_is_503_within_the_timeout_and_charges_nothing(
    start_harness: Any,
) -> None:
    async with (
        silent_server() as port,
        start_harness(
            use_desk=False,
            booking_service_url=f"http://127.0.0.1:{port}",
            http_timeout_seconds=0.5,
            breaker_fail_max=2,
            events_enabled=False,
        ) as harness,
    ):
        user = harness.caller()
        booking_id = str(uuid.uuid4())
        for _ in range(2):  # each call waits at most the timeout
            started = time.monotonic()
            response = await harness.pay(user, booking_id, card_number="4242424242424242")
            assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
            assert time.monotonic() - started < 1.5
        started = time.monotonic()  # the breaker is open now: no wait at all
        response = await harness.pay(user, booking_id, card_number="4242424242424242")
        assert response.status_code == 503 and time.monotonic() - started < 0.3
        assert await harness.charges(booking_id) == 0
        assert await harness.payments_of(booking_id) == []


async def test_rabbitmq_down_the_payment_commits_and_is_published_once_later(
    start_harness: Any, settings: Any
) -> None:
    broker = urlsplit(settings.rabbitmq_url.get_secret_value())
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await proxy.start()
    via_proxy = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}")
    try:
        async with start_harness(rabbitmq_url=via_proxy.geturl()) as harness:
            await wait_until(_connected(harness), within=15, what="the broker connection")
            await proxy.cut()
            user = harness.caller()
            booking = harness.desk.add(user)
            paid = await harness.pay(user, booking["id"])
            assert paid.status_code == 201 and paid.json()["status"] == "succeeded"
            [event] = await harness.outbox_events("payment.completed", booking["id"])
            assert await _unpublished(harness, event["event_id"])
            await proxy.restore()
            await harness.delivered("payment.completed", booking["id"], within=40)
            await wait_until(lambda: _published_mark(harness, event["event_id"]), what="the outbox mark")
            assert len(harness.published("payment.completed", booking["id"])) == 1
    finally:
        await proxy.cut()


def _connected(harness: Harness) -> Any:
    async def probe() -> bool:
        return bool(harness.runtime.broker.is_connected)

    return probe


async def _unpublished(harness: Harness, event_id: str) -> bool:
    return not await _published_mark(harness, event_id)


async def _published_mark(harness: Harness, event_id: str) -> bool:
    from sqlalchemy import select

    from payment_service.models import outbox

    async with harness.runtime.sessionmaker() as session:
        stmt = select(outbox.c.published_at).where(outbox.c.event_id == uuid.UUID(event_id))
        return (await session.scalar(stmt)) is not None
