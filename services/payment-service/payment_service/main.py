"""payment-service application: ``python -m servicekit.serve payment_service``."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from payment_service.bookings import BookingGateway
from payment_service.config import PaymentSettings
from payment_service.idempotency import IdempotencyStore
from payment_service.models import outbox
from payment_service.providers import SimulatedProvider
from payment_service.reconciler import run_reconciler
from payment_service.repository import idempotency_retention, payable_bookings_retention
from payment_service.routes import router
from payment_service.saga import consumers
from payment_service.service import PAYING, Payments
from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.components import Component, Factory
from servicekit.http import ServiceClient, service_client

BOOKING: Component[ServiceClient] = Component("booking-service client")


def _components(
    settings: PaymentSettings, booking_transport: httpx.AsyncBaseTransport | None
) -> list[Factory[Any]]:
    async def paying(runtime: Runtime) -> Payments:
        # Single-statement writes (claiming a key, the provider's ledger) need no BEGIN/COMMIT.
        autocommit = runtime.autocommit
        return Payments(
            settings=settings,
            sessionmaker=runtime.sessionmaker,
            provider=SimulatedProvider(autocommit),
            bookings=BookingGateway(runtime[BOOKING]),
            idempotency=IdempotencyStore(settings, runtime.sessionmaker, runtime.redis, autocommit),
        )

    booking = service_client(BOOKING, "booking", settings.booking_service_url, settings, booking_transport)
    return [booking, Factory(PAYING, paying)]


async def _on_startup(runtime: Runtime) -> None:
    runtime.spawn(run_reconciler(runtime[PAYING]), "payment-reconciler")


def create_app(
    settings: PaymentSettings | None = None, booking_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or PaymentSettings()
    spec = ServiceSpec(
        title="Movie Booking — payment-service",
        description="Idempotent payments of bookings (simulated card provider), refunds, the payment saga.",
        routers=[router],
        components=_components(settings, booking_transport),
        outbox=outbox,
        consumers=consumers,
        retained=[idempotency_retention(), payable_bookings_retention()],
        on_startup=_on_startup,
    )
    return build_app(settings, spec)
