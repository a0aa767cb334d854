"""movie-service application: ``python -m servicekit.serve movie_service``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from movie_service.catalog_cache import CatalogCache
from movie_service.config import MovieSettings
from movie_service.routes import admin, internal, public
from movie_service.seat_map import SeatMapLayouts
from movie_service.seat_status import SeatStatusReader
from movie_service.seed import seed_demo_data
from servicekit.app import Runtime, RuntimeHook, ServiceSpec, build_app
from servicekit.http import ServiceClient

logger = logging.getLogger("movie_service")

TAGS = [
    {"name": "catalog", "description": "Public reads: movies, theaters, showtimes, seat maps."},
    {"name": "admin", "description": "Programme management; needs a bearer token with role `admin`."},
    {
        "name": "internal",
        "description": "Service-to-service; needs `X-Internal-Token`, not routed by the gateway.",
    },
]


async def _seed(runtime: Runtime, settings: MovieSettings, cache: CatalogCache) -> None:
    async with runtime.sessionmaker() as session, session.begin():
        seeded = await seed_demo_data(session, settings.cleaning_minutes, datetime.now(UTC))
    if seeded:
        await cache.bump()
        logger.info("demo programme seeded")


def _startup(booking_transport: httpx.AsyncBaseTransport | None) -> RuntimeHook:
    async def on_startup(runtime: Runtime) -> None:
        settings = runtime.settings
        assert isinstance(settings, MovieSettings)
        booking = ServiceClient(
            "booking", settings.booking_service_url, settings, transport=booking_transport
        )
        runtime.clients["booking"] = booking
        cache = CatalogCache(runtime.redis, settings)
        runtime.state["catalog_cache"] = cache
        runtime.state["seat_statuses"] = SeatStatusReader(booking, settings.seat_status_cache_seconds)
        runtime.state["seat_map_layouts"] = SeatMapLayouts(settings.seat_map_cache_max_bytes)
        if settings.seed_demo_data:
            await _seed(runtime, settings, cache)

    return on_startup


def create_app(
    settings: MovieSettings | None = None, booking_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or MovieSettings()
    spec = ServiceSpec(
        title="Movie Booking — movie-service",
        description=(
            "The catalog (movies, theaters, auditoriums with seat layouts, showtimes) and live seat maps. "
            "Money is integer minor units of `currency` (the demo uses VND: 1 unit = 1 đồng); "
            "times are ISO 8601 with an offset, stored in UTC."
        ),
        routers=[public.router, admin.router, internal.router],
        on_startup=_startup(booking_transport),
        uses_broker=False,
        openapi_tags=TAGS,
    )
    return build_app(settings, spec)
