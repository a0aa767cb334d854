"""The process-local showtime cache is bounded by (estimated) bytes."""

from __future__ import annotations

import json
import tracemalloc
import uuid

from booking_service.catalog import ShowtimeInfo, showtime_bytes
from servicekit.cache import LocalCache


def _showtime(rows: int, seats_per_row: int) -> ShowtimeInfo:
    seats = [
        {"seat_id": f"R{r}-{n}", "row": f"R{r}", "number": n, "tier": "standard", "price": 1200}
        for r in range(rows)
        for n in range(1, seats_per_row + 1)
    ]
    raw = {
        "showtime_id": str(uuid.uuid4()),
        "movie_title": "Film",
        "theater_id": str(uuid.uuid4()),
        "theater_name": "Cinema",
        "auditorium_name": "Hall 1",
        "starts_at": "2030-01-01T18:00:00Z",
        "ends_at": "2030-01-01T20:00:00Z",
        "currency": "USD",
        "seats": seats,
    }
    return ShowtimeInfo.model_validate_json(json.dumps(raw))


def test_the_size_estimate_is_close_to_the_memory_a_parsed_showtime_takes() -> None:
    tracemalloc.start()
    try:
        info = _showtime(100, 100)
        assert len(info.seat_map) == 10_000
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert taken * 0.5 < showtime_bytes(info) < taken * 2


def test_big_showtimes_push_the_least_recently_used_out_within_the_budget() -> None:
    big = [_showtime(100, 100) for _ in range(3)]
    budget = int(showtime_bytes(big[0]) * 2.5)
    cache: LocalCache[uuid.UUID, ShowtimeInfo] = LocalCache(budget, size_of=showtime_bytes)
    for info in big[:2]:
        cache.put(info.showtime_id, info)
    assert cache.get(big[0].showtime_id) is big[0]  # now the most recently used
    cache.put(big[2].showtime_id, big[2])
    assert cache.get(big[1].showtime_id) is None and cache.get(big[0].showtime_id) is big[0]
    assert len(cache) == 2 and cache.total_bytes <= budget
