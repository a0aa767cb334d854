"""movie-service business metrics (names from docs/contracts.md)."""

from __future__ import annotations

from prometheus_client import Counter

SEAT_MAP_REQUESTS = Counter(
    "seat_map_requests_total",
    "Seat map reads, by whether the seat statuses came from the micro-cache",
    ["cache"],
)
