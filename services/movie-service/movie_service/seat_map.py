"""The seat map, rendered cheaply: the layout is serialised once per showtime and catalog version,
then each read only patches the few taken seats' statuses into the ready fragments and joins them.
A render is reused for as long as the seat statuses it was made from (<= 1 s)."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from movie_service.encoding import gzip_body
from movie_service.layout import expand_seats
from movie_service.seat_status import SeatStatuses
from servicekit.cache import LocalCache

_AVAILABLE, _HELD, _BOOKED = b'available"}', b'held"}', b'booked"}'
DEFAULT_LAYOUT_BUDGET_BYTES = 32 * 1024 * 1024
_SLOT_BYTES = 120  # one status_slot entry: its key string and the dict's share


@dataclass(frozen=True)
class ShowtimeFacts:
    """A showtime with everything its seat map and booking's look-up need."""

    showtime_id: uuid.UUID
    movie_id: uuid.UUID
    movie_title: str
    theater_id: uuid.UUID
    theater_name: str
    theater_address: str  # for the tickets mail's calendar entry ("" when none was given)
    city: str
    time_zone: str  # the theater's (IANA): booking's mails show local time
    auditorium_id: uuid.UUID
    auditorium_name: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    prices: dict[str, int]
    layout: dict[str, Any]

    def seats(self) -> list[dict[str, Any]]:
        """Every seat with its price (minor units)."""
        return [
            {
                "seat_id": s.seat_id,
                "row": s.row,
                "number": s.number,
                "tier": s.tier,
                "price": self.prices[s.tier],
            }
            for s in expand_seats(self.layout)
        ]


@dataclass
class RenderedLayout:
    version: str | None
    parts: list[bytes]
    status_slot: dict[str, int]
    last: tuple[int, bytes] | None = field(default=None)
    last_gzip: tuple[int, bytes] | None = field(default=None)

    def render(self, statuses: SeatStatuses) -> bytes:
        """The seat map JSON with these statuses (reused while the statuses are the same)."""
        if self.last is not None and self.last[0] == statuses.serial:
            return self.last[1]
        out = self.parts.copy()
        held = self._mark(out, statuses.held - statuses.booked, _HELD)
        booked = self._mark(out, statuses.booked, _BOOKED)
        available = len(self.status_slot) - held - booked
        out[-1] = b'],"available":%d,"held":%d,"booked":%d}' % (available, held, booked)
        body = b"".join(out)
        self.last = (statuses.serial, body)
        return body

    async def render_gzip(self, statuses: SeatStatuses) -> bytes:
        """``render`` gzip-compressed, compressed once per statuses (the gateway asks once a second)."""
        if self.last_gzip is not None and self.last_gzip[0] == statuses.serial:
            return self.last_gzip[1]
        body = await gzip_body(self.render(statuses))
        self.last_gzip = (statuses.serial, body)
        return body

    def _mark(self, out: list[bytes], seat_ids: frozenset[str], status: bytes) -> int:
        slots = [self.status_slot[s] for s in seat_ids if s in self.status_slot]
        for slot in slots:
            out[slot] = status
        return len(slots)


def build_layout(version: str | None, facts: ShowtimeFacts) -> RenderedLayout:
    """Serialise the static part of a showtime's seat map once."""
    head = {
        "showtime_id": facts.showtime_id,
        "auditorium_id": facts.auditorium_id,
        "auditorium_name": facts.auditorium_name,
        "starts_at": facts.starts_at,
        "currency": facts.currency,
        "layout": facts.layout,
    }
    parts = [orjson.dumps(head, default=str, option=orjson.OPT_UTC_Z)[:-1] + b',"seats":[']
    slots: dict[str, int] = {}
    for i, seat in enumerate(facts.seats()):
        parts.append((b"," if i else b"") + orjson.dumps(seat)[:-1] + b',"status":"')
        slots[seat["seat_id"]] = len(parts)
        parts.append(_AVAILABLE)
    parts.append(b"]}")
    return RenderedLayout(version, parts, slots)


class SeatMapLayouts:
    """Rendered layouts of recently viewed showtimes, per process (a byte budget, least recently used out)."""

    def __init__(self, max_bytes: int = DEFAULT_LAYOUT_BUDGET_BYTES) -> None:
        self._layouts: LocalCache[uuid.UUID, RenderedLayout] = LocalCache(max_bytes, size_of=layout_bytes)

    def get(self, showtime_id: uuid.UUID, version: str | None) -> RenderedLayout | None:
        layout = self._layouts.get(showtime_id)
        if layout is None or version is None or layout.version != version:
            return None
        return layout

    def put(self, showtime_id: uuid.UUID, layout: RenderedLayout) -> None:
        self._layouts.put(showtime_id, layout)

    @property
    def total_bytes(self) -> int:
        return self._layouts.total_bytes

    def __len__(self) -> int:
        return len(self._layouts)


def layout_bytes(layout: RenderedLayout) -> int:
    """A layout's memory, roughly: its fragments, the last render (they joined), its gzip copy
    (a tenth of the body: 6-9 % measured) and its slots."""
    fragments = sum(sys.getsizeof(part) for part in layout.parts) + sys.getsizeof(layout.parts)
    body = sum(len(part) for part in layout.parts)
    return fragments + body + body // 10 + _SLOT_BYTES * len(layout.status_slot)
