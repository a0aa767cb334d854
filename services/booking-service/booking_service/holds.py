"""Seat holds in Redis: the one Lua script of ``holds.lua`` (hold, release, list).

A hold is taken for all seats or none, with a random token and ``PX`` = the
hold time; only the holder's token releases it. Redis trouble becomes a fast
503, never a hang (a short timeout and no retry storm).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from booking_service.config import BookingSettings
from booking_service.metrics import SEAT_HOLDS
from servicekit.cache import key
from servicekit.errors import ServiceUnavailable

logger = logging.getLogger("booking_service.holds")
HOLD_SCRIPT = files("booking_service").joinpath("holds.lua").read_text(encoding="utf-8")


def new_hold_token() -> str:
    return secrets.token_hex(16)


def seat_key(settings: BookingSettings, showtime_id: uuid.UUID, seat_id: str) -> str:
    """``{prefix}lock:seat:{<showtime_id>}:<seat>``: hash-tagged per showtime."""
    return key(settings, "lock", "seat", f"{{{showtime_id}}}", seat_id)


def index_key(settings: BookingSettings, showtime_id: uuid.UUID) -> str:
    return key(settings, "lock", "held", f"{{{showtime_id}}}")


class SeatHolds:
    """Take, release and list the seat holds of a showtime."""

    def __init__(self, redis: Redis, settings: BookingSettings) -> None:
        self._script = redis.register_script(HOLD_SCRIPT)
        self._settings = settings

    async def _run(self, showtime_id: uuid.UUID, seats: Sequence[str], *args: str | int) -> Any:
        keys = [index_key(self._settings, showtime_id)]
        keys += [seat_key(self._settings, showtime_id, s) for s in seats]
        try:
            return await self._script(keys=keys, args=[*args, *seats])
        except (RedisError, OSError) as exc:
            logger.warning("seat hold store unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable("Seat holds are unavailable, try again shortly") from exc

    async def hold(
        self, showtime_id: uuid.UUID, seats: Sequence[str], token: str, ttl_seconds: float | None = None
    ) -> list[str]:
        """Hold every seat or none for ``ttl_seconds`` (the hold time by default); returns the
        seats already held (empty on success)."""
        seconds = self._settings.hold_ttl_seconds if ttl_seconds is None else ttl_seconds
        ttl_ms = max(1, int(seconds * 1000))
        taken: list[str] = await self._run(showtime_id, seats, "hold", token, ttl_ms)
        SEAT_HOLDS.labels("conflicted" if taken else "taken").inc()
        return taken

    async def release(self, showtime_id: uuid.UUID, seats: Sequence[str], token: str) -> None:
        """Release the seats still held with ``token``; Redis trouble is logged, not raised
        (the keys expire on their own and the database is the authority)."""
        try:
            released = await self._run(showtime_id, seats, "release", token, 0)
        except ServiceUnavailable:
            return
        if released:
            SEAT_HOLDS.labels("released").inc()

    async def held_seats(self, showtime_id: uuid.UUID) -> list[str]:
        """Seat ids of the showtime with a live Redis hold."""
        held: list[str] = await self._run(showtime_id, [], "list", "", 0)
        return held
