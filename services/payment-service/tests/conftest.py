"""Fixtures: payment-service against real PostgreSQL, Redis and RabbitMQ.

booking-service is replaced by a small app implementing its internal
``GET /internal/bookings/{id}`` exactly as docs/contracts.md says, serving
bookings the test controls (and can hold back with a gate), counting the calls;
``Harness.announce`` publishes a booking's ``booking.created`` as booking-service would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from payment_service import repository
from payment_service.config import PaymentSettings
from payment_service.main import create_app
from payment_service.models import Payment, outbox, processed_events
from servicekit.app import Runtime
from servicekit.events import new_event
from servicekit.testing import RabbitSpy, app_client, mint_token, test_settings_overrides, wait_until


def make_settings(**extra: Any) -> PaymentSettings:
    defaults = {
        "booking_service_url": "http://booking.test",
        "provider_retry_base_ms": 5,
        "idempotency_lock_seconds": 30,
        "reconciler_interval_seconds": 3600,  # one pass at start; tests run their own passes
    }
    return PaymentSettings(**test_settings_overrides("payment_service", "payment", **{**defaults, **extra}))


@dataclass
class BookingDesk:
    """The bookings the contract app serves; a gate holds a booking's answer until set;
    ``calls`` counts the requests for each booking id."""

    settings: PaymentSettings
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, user: Caller, amount: int = 2400, **overrides: Any) -> dict[str, Any]:
        booking = {
            "id": str(uuid.uuid4()),
            "user_id": str(user.user_id),
            "user_email": user.email,
            "status": "pending",
            "showtime_id": str(uuid.uuid4()),
            "seats": ["A1", "A2"],
            "total_amount": amount,
            "currency": "USD",
            "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
            **overrides,
        }
        self.bookings[booking["id"]] = booking
        return booking

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/bookings/{booking_id}")
        async def get_booking(booking_id: uuid.UUID, request: Request) -> JSONResponse:
            self.calls[str(booking_id)] += 1
            token = self.settings.internal_token.get_secret_value()
            if request.headers.get("x-internal-token") != token:
                return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
            gate = self.gates.get(str(booking_id))
            if gate is not None:
                await gate.wait()
            booking = self.bookings.get(str(booking_id))
            if booking is None:
                return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
            return JSONResponse(booking)

        return app


def booking_event(event_type: str, booking: dict[str, Any], **data: Any) -> dict[str, Any]:
    """An event booking-service would publish about a desk booking (payloads as docs/contracts.md):
    the fields every booking.* event carries, plus ``data``."""
    fields = ("user_id", "user_email", "showtime_id", "seats", "total_amount", "currency")
    data = {"booking_id": booking["id"], **{name: booking[name] for name in fields}, **data}
    return new_event(event_type, "booking-service", data).model_dump(mode="json")


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    email: str
    headers: dict[str, str]


@dataclass
class Harness:
    """One running payment-service plus what the tests need around it."""

    client: httpx.AsyncClient
    settings: PaymentSettings
    desk: BookingDesk
    spy: RabbitSpy
    runtime: Runtime
    attached: bool = False

    def caller(self, roles: tuple[str, ...] = ("user",)) -> Caller:
        user_id = uuid.uuid4()
        email = f"u{user_id.hex[:10]}@example.com"
        token = mint_token(self.settings, user_id=user_id, roles=roles, email=email)
        return Caller(user_id, email, {"Authorization": f"Bearer {token}"})

    async def pay(self, user: Caller, booking_id: str, key: str | None = None, **body: Any) -> httpx.Response:
        headers = dict(user.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        payload = {"booking_id": booking_id, "payment_method": "credit_card", **body}
        return await self.client.post("/process", json=payload, headers=headers)

    booking_event = staticmethod(booking_event)

    async def announce(self, booking: dict[str, Any], **data: Any) -> dict[str, Any]:
        """Publish the booking's ``booking.created`` (``data`` overrides fields) and wait until
        payment-service has consumed it."""
        if not self.attached:  # an event published before the queue is bound would be lost
            await wait_until(self._consuming, within=15, what="payment-service's consumer attached")
            self.attached = True
        event = booking_event("booking.created", booking, **{"expires_at": booking["expires_at"], **data})
        await self.spy.publish("booking.created", event)
        await wait_until(lambda: self.consumed(event["event_id"]), what=f"booking.created of {booking['id']}")
        return event

    async def _consuming(self) -> bool:
        """Whether the consumer is attached to its queue (it binds the queue before consuming)."""
        [consumer] = self.runtime.consumers
        async with await aio_pika.connect(self.settings.rabbitmq_url.get_secret_value()) as connection:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(consumer.queue_name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False
            return bool(queue.declaration_result.consumer_count)

    async def consumed(self, *event_ids: str) -> bool:
        """Whether payment-service's consumer has processed all these events."""
        ids = [uuid.UUID(e) for e in event_ids]
        async with self.runtime.sessionmaker() as session:
            stmt = select(func.count()).where(processed_events.c.event_id.in_(ids))
            return int(await session.scalar(stmt) or 0) == len(ids)

    async def charges(self, booking_id: str) -> int:
        """Charges the simulated provider made for the booking (its own ledger)."""
        async with self.runtime.sessionmaker() as session:
            return await repository.count_ledger_entries(session, booking_id, "charge")

    async def refunds(self, charge_id: str) -> int:
        async with self.runtime.sessionmaker() as session:
            return await repository.count_ledger_entries(session, charge_id, "refund")

    async def payments_of(self, booking_id: str) -> list[Payment]:
        async with self.runtime.sessionmaker() as session:
            stmt = select(Payment).where(Payment.booking_id == uuid.UUID(booking_id))
            return list((await session.execute(stmt)).scalars())

    async def outbox_events(self, event_type: str, booking_id: str) -> list[dict[str, Any]]:
        """Events written to the outbox for a booking (published or not)."""
        async with self.runtime.sessionmaker() as session:
            stmt = select(outbox.c.payload).where(
                outbox.c.event_type == event_type,
                outbox.c.payload["data"]["booking_id"].astext == booking_id,
            )
            return [row.payload for row in (await session.execute(stmt)).all()]

    async def unpublished(self) -> int:
        async with self.runtime.sessionmaker() as session:
            stmt = select(func.count()).where(outbox.c.published_at.is_(None))
            return int(await session.scalar(stmt) or 0)

    def published(self, event_type: str, booking_id: str) -> list[dict[str, Any]]:
        """Events of the booking that reached the exchange (seen by the spy)."""
        return [m for m in self.spy.of_type(event_type) if m["data"].get("booking_id") == booking_id]

    async def delivered(
        self, event_type: str, booking_id: str, count: int = 1, within: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` such events reached the exchange; return them."""

        async def probe() -> list[dict[str, Any]]:
            found = self.published(event_type, booking_id)
            return found if len(found) >= count else []

        return await wait_until(probe, within=within, what=f"{count} {event_type} for {booking_id}")


@pytest.fixture(scope="session")
def settings() -> PaymentSettings:
    return make_settings()


@pytest.fixture(scope="session")
async def spy(settings: PaymentSettings) -> AsyncIterator[RabbitSpy]:
    url = settings.rabbitmq_url.get_secret_value()
    async with RabbitSpy(url, settings.events_exchange, ["payment.#"]) as watcher:
        yield watcher


HarnessFactory = Callable[..., AbstractAsyncContextManager[Harness]]


@pytest.fixture(scope="session")
def start_harness(spy: RabbitSpy) -> HarnessFactory:
    """Start a payment-service (optionally with other settings) with its own booking desk."""

    @asynccontextmanager
    async def start(use_desk: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
        settings = make_settings(**overrides)
        desk = BookingDesk(settings)
        transport = httpx.ASGITransport(app=desk.app()) if use_desk else None
        app = create_app(settings, booking_transport=transport)
        async with app_client(app) as client:
            yield Harness(client, settings, desk, spy, app.state.runtime)

    return start


@pytest.fixture(scope="module")
async def harness(start_harness: HarnessFactory) -> AsyncIterator[Harness]:
    """The module's payment-service (one per test module, so outage tests run it alone)."""
    async with start_harness() as running:
        yield running
