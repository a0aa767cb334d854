"""payment-service application: ``python -m servicekit.serve payment_service``."""

from __future__ import annotations

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
from payment_service.service import Payments
from servicekit.app import Runtime, RuntimeHook, ServiceSpec, build_app
from servicekit.http import ServiceClient


def _startup(settings: PaymentSettings, booking_transport: httpx.AsyncBaseTransport | None) -> RuntimeHook:
    async def on_startup(runtime: Runtime) -> None:
        client = ServiceClient("booking", settings.booking_service_url, settings, transport=booking_transport)
        runtime.clients["booking"] = client
        # Single-statement writes (claiming a key, the provider's ledger) need no BEGIN/COMMIT.
        autocommit = runtime.autocommit
        idempotency = IdempotencyStore(settings, runtime.sessionmaker, runtime.redis, autocommit)
        payments = Payments(
            settings=settings,
            sessionmaker=runtime.sessionmaker,
            provider=SimulatedProvider(autocommit),
            bookings=BookingGateway(client),
            idempotency=idempotency,
        )
        runtime.state["payments"] = payments
        runtime.spawn(run_reconciler(payments), "payment-reconciler")

    return on_startup


def create_app(
    settings: PaymentSettings | None = None, booking_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or PaymentSettings()
    spec = ServiceSpec(
        title="Movie Booking — payment-service",
        description="Idempotent payments of bookings (simulated card provider), refunds, the payment saga.",
        routers=[router],
        outbox=outbox,
        consumers=consumers,
        retained=[idempotency_retention(), payable_bookings_retention()],
        on_startup=_startup(settings, booking_transport),
    )
    return build_app(settings, spec)
