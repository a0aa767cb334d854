"""Showtime look-ups from movie-service, cached in the process and in Redis.

The hot path (``POST /book``) must not pay a hop to movie-service: a showtime's
layout and prices change rarely, so a look-up is served from a short
process-local cache, then from Redis, and only then from movie's internal API.
Concurrent misses for one showtime share a single upstream call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from booking_service.config import BookingSettings
from servicekit.cache import key
from servicekit.errors import BadGateway, NotFound
from servicekit.http import ServiceClient
from servicekit.lru import SizedLRU

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
    theater_name: str
    # The theater's IANA zone; None in an answer cached before movie sent it.
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
    fresh_until: float  # time.monotonic()


class ShowtimeCatalog:
    """Look up showtimes (process cache -> Redis -> movie-service).

    A process-cache entry is fresh for ``showtime_local_cache_seconds``; then the text is
    read again, and parsed again only if it changed (parsing a 10,000-seat showtime holds
    the event loop for tens of milliseconds, so an unchanged one is never re-parsed).
    """

    def __init__(self, client: ServiceClient, redis: Redis, settings: BookingSettings) -> None:
        self._client, self._redis, self._settings = client, redis, settings
        self._local: SizedLRU[uuid.UUID, _Cached] = SizedLRU(settings.showtime_local_cache_max_bytes)
        self._inflight: dict[uuid.UUID, asyncio.Task[ShowtimeInfo]] = {}

    async def get(self, showtime_id: uuid.UUID) -> ShowtimeInfo:
        """The showtime with its seats and prices; 404 unknown, 503 when movie is down."""
        cached = self._local.get(showtime_id)
        if cached is not None and cached.fresh_until > time.monotonic():
            return cached.info
        task = self._inflight.get(showtime_id)
        if task is None:
            task = asyncio.ensure_future(self._load(showtime_id))
            self._inflight[showtime_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(showtime_id, None))
        return await asyncio.shield(task)

    async def _load(self, showtime_id: uuid.UUID) -> ShowtimeInfo:
        raw = await self._from_redis(showtime_id)
        if raw is None:
            raw = await self._from_movie(showtime_id)
            await self._to_redis(showtime_id, raw)
        cached = self._local.get(showtime_id)
        info = cached.info if cached is not None and cached.raw == raw else _parse(raw)
        fresh_until = time.monotonic() + self._settings.showtime_local_cache_seconds
        self._local.put(showtime_id, _Cached(raw, info, fresh_until), showtime_bytes(info) + len(raw))
        return info

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


def _parse(raw: str) -> ShowtimeInfo:
    try:
        return ShowtimeInfo.model_validate_json(raw)
    except ValidationError as exc:
        raise BadGateway("movie-service answered an unexpected showtime shape") from exc
