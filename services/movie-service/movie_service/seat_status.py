"""Seat statuses from booking-service, micro-cached per showtime (the seat map may lag <= 1 s).

Concurrent readers of one showtime share a single call to booking. Booking unreachable or
answering nonsense is a 503: a taken seat is never shown as available.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import time
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from servicekit.errors import ServiceUnavailable
from servicekit.http import ServiceClient

_PURGE_ABOVE = 2048


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


class SeatStatusReader:
    def __init__(self, client: ServiceClient, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._serials = itertools.count(1)
        self._entries: dict[uuid.UUID, tuple[float, SeatStatuses]] = {}
        self._inflight: dict[uuid.UUID, asyncio.Future[SeatStatuses]] = {}

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
        entry = self._entries.get(showtime_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1], True
        pending = self._inflight.get(showtime_id)
        if pending is not None:
            return await asyncio.shield(pending), True
        return await self._refresh(showtime_id), False

    async def _renew(self, showtime_id: uuid.UUID) -> SeatStatuses:
        """``fetch``, keeping the serial of the statuses it renews when booking says the same."""
        statuses = await self.fetch(showtime_id)
        entry = self._entries.get(showtime_id)
        if entry is not None and entry[1].held == statuses.held and entry[1].booked == statuses.booked:
            return dataclasses.replace(statuses, serial=entry[1].serial)
        return statuses

    async def _refresh(self, showtime_id: uuid.UUID) -> SeatStatuses:
        task = asyncio.ensure_future(self._renew(showtime_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._inflight[showtime_id] = task
        try:
            statuses = await asyncio.shield(task)
        finally:
            self._inflight.pop(showtime_id, None)
        self._remember(showtime_id, time.monotonic() + statuses.fresh_until - time.time(), statuses)
        return statuses

    def _remember(self, showtime_id: uuid.UUID, expires: float, statuses: SeatStatuses) -> None:
        if len(self._entries) > _PURGE_ABOVE:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[showtime_id] = (expires, statuses)
