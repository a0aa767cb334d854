"""Showtime look-ups from movie-service, cached in the process and in Redis.

The hot path (``POST /book``) must not pay a hop to movie-service: a showtime's
layout and prices change rarely, so a look-up is served from a short
process-local cache, then from Redis, and only then from movie's internal API.
Concurrent misses for one showtime share a single upstream call.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from booking_service.config import BookingSettings
from servicekit.cache import LocalCache, key
from servicekit.errors import BadGateway, NotFound
from servicekit.http import ServiceClient

logger = logging.getLogger("booking_service.catalog")
# A parsed seat costs ~1.1 kB (a pydantic SeatInfo, its strings and its seat_map slot).
SHOWTIME_BASE_BYTES, SEAT_BYTES = 4096, 1100


class SeatInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    seat_id: str
    row: str
    number: int
    tier: str
    price: int


class ShowtimeInfo(BaseModel):
    """movie-service's ``GET /internal/showtimes/{id}`` answer (docs/contracts.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    showtime_id: uuid.UUID
    movie_title: str
    theater_id: uuid.UUID
    theater_name: str
    # The theater's address ("" when it has none) and IANA zone; None in an answer cached
    # before movie sent them.
    theater_address: str | None = None
    time_zone: str | None = None
    auditorium_name: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    seats: list[SeatInfo]

    @cached_property
    def seat_map(self) -> dict[str, SeatInfo]:
        return {seat.seat_id: seat for seat in self.seats}


@dataclass(frozen=True)
class _Cached:
    raw: str  # the answer it was parsed from
    info: ShowtimeInfo


class ShowtimeCatalog:
    """Look up showtimes (process cache -> Redis -> movie-service).

    A process-cache entry is fresh for ``showtime_local_cache_seconds``; then the text is
    read again, and parsed again only if it changed (parsing a 10,000-seat showtime holds
    the event loop for tens of milliseconds, so an unchanged one is never re-parsed).
    """

    def __init__(self, client: ServiceClient, redis: Redis, settings: BookingSettings) -> None:
        self._client, self._redis, self._settings = client, redis, settings
        # A stale entry stays (until the budget pushes it out): its text tells whether to parse again.
        self._local: LocalCache[uuid.UUID, _Cached] = LocalCache(
            settings.showtime_local_cache_max_bytes,
            size_of=_cached_bytes,
            fresh_for=lambda _: settings.showtime_local_cache_seconds,
            keep_stale=math.inf,
        )

    async def get(self, showtime_id: uuid.UUID) -> ShowtimeInfo:
        """The showtime with its seats and prices; 404 unknown, 503 when movie is down."""
        cached, _ = await self._local.get_or_load(showtime_id, self._load)
        return cached.info

    async def _load(self, showtime_id: uuid.UUID, stale: _Cached | None) -> _Cached:
        raw = await self._from_redis(showtime_id)
        if raw is None:
            raw = await self._from_movie(showtime_id)
            await self._to_redis(showtime_id, raw)
        return _Cached(raw, stale.info if stale is not None and stale.raw == raw else _parse(raw))

    async def _from_movie(self, showtime_id: uuid.UUID) -> str:
        response = await self._client.request("GET", f"/internal/showtimes/{showtime_id}")
        if response.status_code == 404:
            raise NotFound("Showtime not found", code="showtime_not_found")
        if response.status_code != 200:
            raise BadGateway(f"movie-service answered {response.status_code}")
        return response.text

    async def _from_redis(self, showtime_id: uuid.UUID) -> str | None:
        try:
            raw = await self._redis.get(self._key(showtime_id))
        except RedisError:
            return None
        return None if raw is None else str(raw)

    async def _to_redis(self, showtime_id: uuid.UUID, raw: str) -> None:
        ttl = self._settings.showtime_cache_seconds
        if ttl <= 0:
            return
        try:
            await self._redis.set(self._key(showtime_id), raw, px=int(ttl * 1000))
        except RedisError:
            logger.warning("could not cache showtime %s", showtime_id)

    def _key(self, showtime_id: uuid.UUID) -> str:
        return key(self._settings, "showtime", showtime_id)


def showtime_bytes(info: ShowtimeInfo) -> int:
    """What a parsed showtime costs in memory, roughly (the local cache's budget is in bytes)."""
    return SHOWTIME_BASE_BYTES + SEAT_BYTES * len(info.seats)


def _cached_bytes(cached: _Cached) -> int:
    return showtime_bytes(cached.info) + len(cached.raw)


def _parse(raw: str) -> ShowtimeInfo:
    try:
        return ShowtimeInfo.model_validate_json(raw)
    except ValidationError as exc:
        raise BadGateway("movie-service answered an unexpected showtime shape") from exc
