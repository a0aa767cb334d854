"""movie-service application: ``python -m servicekit.serve movie_service``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from movie_service.catalog_cache import CatalogCache
from movie_service.config import MovieSettings
from movie_service.routes import admin, internal, public
from movie_service.routes.deps import CATALOG_CACHE, SEAT_MAP_LAYOUTS, SEAT_STATUSES
from movie_service.seat_map import SeatMapLayouts
from movie_service.seat_status import SeatStatusReader
from movie_service.seed import seed_demo_data
from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.components import Component, Factory
from servicekit.http import ServiceClient, service_client

logger = logging.getLogger("movie_service")

TAGS = [
    {"name": "catalog", "description": "Public reads: movies, theaters, showtimes, seat maps."},
    {"name": "admin", "description": "Programme management; needs a bearer token with role `admin`."},
    {
        "name": "internal",
        "description": "Service-to-service; needs `X-Internal-Token`, not routed by the gateway.",
    },
]


BOOKING: Component[ServiceClient] = Component("booking-service client")


def _components(
    settings: MovieSettings, booking_transport: httpx.AsyncBaseTransport | None
) -> list[Factory[Any]]:
    async def catalog_cache(runtime: Runtime) -> CatalogCache:
        return CatalogCache(runtime.redis, settings)

    async def seat_statuses(runtime: Runtime) -> SeatStatusReader:
        return SeatStatusReader(runtime[BOOKING], settings.seat_status_cache_seconds)

    async def seat_map_layouts(_: Runtime) -> SeatMapLayouts:
        return SeatMapLayouts(settings.seat_map_cache_max_bytes)

    return [
        service_client(BOOKING, "booking", settings.booking_service_url, settings, booking_transport),
        Factory(CATALOG_CACHE, catalog_cache),
        Factory(SEAT_STATUSES, seat_statuses),
        Factory(SEAT_MAP_LAYOUTS, seat_map_layouts),
    ]


async def _seed(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, MovieSettings)
    if not settings.seed_demo_data:
        return
    async with runtime.sessionmaker() as session, session.begin():
        seeded = await seed_demo_data(session, settings.cleaning_minutes, datetime.now(UTC))
    if seeded:
        await runtime[CATALOG_CACHE].bump()
        logger.info("demo programme seeded")


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
        components=_components(settings, booking_transport),
        on_startup=_seed,
        uses_broker=False,
        openapi_tags=TAGS,
    )
    return build_app(settings, spec)
