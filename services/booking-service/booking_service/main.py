"""booking-service application: ``python -m servicekit.serve booking_service``."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from booking_service.catalog import ShowtimeCatalog
from booking_service.config import BookingSettings
from booking_service.consumer import build_consumers
from booking_service.holds import SeatHolds
from booking_service.models import outbox
from booking_service.routes import internal_router, router
from booking_service.service import BOOKING, BookingContext
from booking_service.sweeper import run_expiry_sweeper
from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.components import Component, Factory
from servicekit.events.consumer import EventConsumer
from servicekit.http import ServiceClient, service_client

MOVIE: Component[ServiceClient] = Component("movie-service client")


def _components(
    settings: BookingSettings, movie_transport: httpx.AsyncBaseTransport | None
) -> list[Factory[Any]]:
    async def booking(runtime: Runtime) -> BookingContext:
        catalog = ShowtimeCatalog(runtime[MOVIE], runtime.redis, settings)
        holds = SeatHolds(runtime.redis, settings)
        return BookingContext(settings, catalog, holds, runtime.autocommit, runtime.outbox_wakeup)

    movie = service_client(MOVIE, "movie", settings.movie_service_url, settings, movie_transport)
    return [movie, Factory(BOOKING, booking)]


def _consumers(runtime: Runtime) -> list[EventConsumer]:
    booking = runtime[BOOKING]
    return build_consumers(runtime, booking.holds, booking.settings.max_seats_per_booking)


async def _on_startup(runtime: Runtime) -> None:
    runtime.spawn(run_expiry_sweeper(runtime, runtime[BOOKING]), "expiry-sweeper")


def create_app(
    settings: BookingSettings | None = None, movie_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or BookingSettings()
    spec = ServiceSpec(
        title="Movie Booking — booking-service",
        description="Seat holds (Redis locks), bookings and their lifecycle; no seat is ever sold twice.",
        routers=[router, internal_router],
        components=_components(settings, movie_transport),
        outbox=outbox,
        consumers=_consumers,
        on_startup=_on_startup,
    )
    return build_app(settings, spec)
