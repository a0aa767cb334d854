"""Seat statuses from booking-service, micro-cached per showtime (the seat map may lag <= 1 s).

Concurrent readers of one showtime share a single call to booking. Booking unreachable or
answering nonsense is a 503: a taken seat is never shown as available.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from servicekit.cache import LocalCache
from servicekit.errors import ServiceUnavailable
from servicekit.http import ServiceClient

# A seat id in a frozenset (its string and its slot), and what one showtime's statuses cost
# besides (the two sets, the dataclass, the cache's entry).
SEAT_ID_BYTES, STATUSES_BASE_BYTES = 120, 1024
DEFAULT_STATUS_BUDGET_BYTES = 16 * 1024 * 1024
KEEP_STALE_SECONDS = 60.0


class SeatStatusReply(BaseModel):
    """booking-service ``GET /internal/showtimes/{id}/seat-status`` (docs/contracts.md)."""

    showtime_id: uuid.UUID
    held: list[str]
    booked: list[str]


@dataclass(frozen=True, slots=True)
class SeatStatuses:
    """What booking said of one showtime. Equal serials mean equal ``held`` and ``booked``:
    a renewal that finds nothing changed keeps the serial, so its rendered map is reused."""

    serial: int
    held: frozenset[str]
    booked: frozenset[str]
    fresh_until: float = 0.0  # wall clock (epoch seconds): when booking was asked + the cache time


def fresh_until(asked_at: float, ttl: float) -> float:
    """Until when statuses asked of booking at ``asked_at`` (epoch seconds) may be shown.

    At most ``ttl`` later, and cut at a whole second when one falls in between: the
    gateway keeps a seat map until a whole second (its clock has no finer grain), so a
    map made from these statuses can be kept there to the very end of their life, and
    the next request after it asks booking again.
    """
    whole = math.floor(asked_at + ttl)
    return whole if whole > asked_at else asked_at + ttl


def statuses_bytes(statuses: SeatStatuses) -> int:
    """What statuses cost in memory, roughly (the cache's budget is in bytes)."""
    return STATUSES_BASE_BYTES + SEAT_ID_BYTES * (len(statuses.held) + len(statuses.booked))


class SeatStatusReader:
    def __init__(
        self, client: ServiceClient, ttl_seconds: float, max_bytes: int = DEFAULT_STATUS_BUDGET_BYTES
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._serials = itertools.count(1)
        # Kept a while past their time: a renewal that finds nothing changed keeps the serial.
        self._cache: LocalCache[uuid.UUID, SeatStatuses] = LocalCache(
            max_bytes, size_of=statuses_bytes, fresh_for=_still_fresh_for, keep_stale=KEEP_STALE_SECONDS
        )

    async def fetch(self, showtime_id: uuid.UUID) -> SeatStatuses:
        """Ask booking now (no cache): the seats that are held or booked."""
        asked_at = time.time()
        response = await self._client.request("GET", f"/internal/showtimes/{showtime_id}/seat-status")
        if response.status_code != 200:
            raise ServiceUnavailable("Seat availability is unavailable", code="seat_status_unavailable")
        try:
            reply = SeatStatusReply.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServiceUnavailable(
                "Seat availability is unavailable", code="seat_status_unavailable"
            ) from exc
        return SeatStatuses(
            next(self._serials),
            frozenset(reply.held),
            frozenset(reply.booked),
            fresh_until(asked_at, self._ttl),
        )

    async def get(self, showtime_id: uuid.UUID) -> tuple[SeatStatuses, bool]:
        """The statuses, and whether they came from the micro-cache (or a call already in flight)."""
        return await self._cache.get_or_load(showtime_id, self._renew)

    async def _renew(self, showtime_id: uuid.UUID, stale: SeatStatuses | None) -> SeatStatuses:
        """``fetch``, keeping the serial of the statuses it renews when booking says the same."""
        statuses = await self.fetch(showtime_id)
        if stale is not None and stale.held == statuses.held and stale.booked == statuses.booked:
            return dataclasses.replace(statuses, serial=stale.serial)
        return statuses


def _still_fresh_for(statuses: SeatStatuses) -> float:
    return statuses.fresh_until - time.time()
