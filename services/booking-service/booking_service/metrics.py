"""booking-service business metrics (names in docs/contracts.md)."""

from __future__ import annotations

from prometheus_client import Counter

SEAT_HOLDS = Counter(
    "seat_holds_total",
    "Seat hold attempts and ends by outcome (taken|conflicted|expired|released)",
    ["outcome"],
)
BOOKINGS = Counter("bookings_total", "Booking transitions into a status", ["status"])
TICKET_CHECKINS = Counter(
    "ticket_checkins_total",
    "Tickets scanned at the door by outcome "
    "(admitted|already_admitted|ticket_void|ticket_expired|too_early|wrong_theater|unknown)",
    ["outcome"],
)
