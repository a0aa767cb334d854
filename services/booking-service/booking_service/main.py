"""booking-service application: ``python -m servicekit.serve booking_service``."""

from __future__ import annotations

from functools import partial

import httpx
from fastapi import FastAPI

from booking_service.catalog import ShowtimeCatalog
from booking_service.config import BookingSettings
from booking_service.consumer import build_consumers
from booking_service.holds import SeatHolds
from booking_service.models import outbox
from booking_service.routes import internal_router, router
from booking_service.service import BookingContext
from booking_service.sweeper import run_expiry_sweeper
from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.http import ServiceClient


def _context(runtime: Runtime, movie_transport: httpx.AsyncBaseTransport | None) -> BookingContext:
    """The booking parts, made once per runtime (the consumers need them before start-up ends)."""
    if "booking" not in runtime.state:
        settings = runtime.settings
        assert isinstance(settings, BookingSettings)
        redis = runtime.redis
        movie = ServiceClient("movie", settings.movie_service_url, settings, transport=movie_transport)
        runtime.clients["movie"] = movie
        catalog = ShowtimeCatalog(movie, redis, settings)
        holds = SeatHolds(redis, settings)
        runtime.state["booking"] = BookingContext(
            settings, catalog, holds, runtime.autocommit, runtime.outbox_wakeup
        )
    context: BookingContext = runtime.state["booking"]
    return context


async def _on_startup(runtime: Runtime, movie_transport: httpx.AsyncBaseTransport | None) -> None:
    context = _context(runtime, movie_transport)
    runtime.spawn(run_expiry_sweeper(runtime, context), "expiry-sweeper")


def create_app(
    settings: BookingSettings | None = None, movie_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or BookingSettings()
    spec = ServiceSpec(
        title="Movie Booking — booking-service",
        description="Seat holds (Redis locks), bookings and their lifecycle; no seat is ever sold twice.",
        routers=[router, internal_router],
        outbox=outbox,
        consumers=lambda runtime: build_consumers(runtime, _context(runtime, movie_transport).holds),
        on_startup=partial(_on_startup, movie_transport=movie_transport),
    )
    return build_app(settings, spec)
