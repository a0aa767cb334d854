"""A stale process-cache entry is checked against Redis: reused while unchanged, re-parsed once changed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from booking_service.catalog import ShowtimeCatalog
from booking_service.config import BookingSettings
from servicekit.cache import key
from servicekit.http import ServiceClient

FRESH_SECONDS = 0.05


def _showtime_text(showtime_id: uuid.UUID, price: int) -> str:
    seats = [
        {"seat_id": f"A{n}", "row": "A", "number": n, "tier": "standard", "price": price} for n in (1, 2)
    ]
    return json.dumps(
        {
            "showtime_id": str(showtime_id),
            "movie_title": "Film",
            "theater_id": str(uuid.uuid4()),
            "theater_name": "Cinema",
            "auditorium_name": "Hall 1",
            "starts_at": "2030-01-01T18:00:00Z",
            "ends_at": "2030-01-01T20:00:00Z",
            "currency": "VND",
            "seats": seats,
        }
    )


def _movie_must_not_be_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"movie-service was called ({request.url}); Redis holds the showtime")


async def _until_stale(got_at: float) -> None:
    """Wait (polling the clock, at most FRESH_SECONDS) until an entry loaded before ``got_at`` is stale."""
    await asyncio.sleep(max(0.0, got_at + FRESH_SECONDS - time.monotonic()) + 0.01)


async def test_an_unchanged_showtime_is_not_parsed_again_a_changed_one_is(
    redis: Redis, settings_with: Callable[..., BookingSettings]
) -> None:
    settings = settings_with(showtime_local_cache_seconds=FRESH_SECONDS)
    movie = ServiceClient(
        "movie", "http://movie", settings, transport=httpx.MockTransport(_movie_must_not_be_called)
    )
    catalog, showtime_id = ShowtimeCatalog(movie, redis, settings), uuid.uuid4()
    redis_key = key(settings, "showtime", showtime_id)
    await redis.set(redis_key, _showtime_text(showtime_id, 1200), px=60_000)
    try:
        first = await catalog.get(showtime_id)
        await _until_stale(time.monotonic())
        again: Any = await catalog.get(showtime_id)
        assert again is first, "an unchanged showtime was parsed again"

        await redis.set(redis_key, _showtime_text(showtime_id, 1500), px=60_000)
        await _until_stale(time.monotonic())
        changed = await catalog.get(showtime_id)
        assert changed is not first and changed.seat_map["A1"].price == 1500
        assert first.seat_map["A1"].price == 1200
    finally:
        await redis.delete(redis_key)
        await movie.aclose()
