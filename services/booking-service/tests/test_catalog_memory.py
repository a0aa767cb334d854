"""The process-local showtime cache is bounded by (estimated) bytes and drops expired showtimes."""

from __future__ import annotations

import json
import tracemalloc
import uuid

from booking_service.catalog import ShowtimeInfo, showtime_bytes
from servicekit.lru import SizedLRU


def _showtime(rows: int, seats_per_row: int) -> ShowtimeInfo:
    seats = [
        {"seat_id": f"R{r}-{n}", "row": f"R{r}", "number": n, "tier": "standard", "price": 1200}
        for r in range(rows)
        for n in range(1, seats_per_row + 1)
    ]
    raw = {
        "showtime_id": str(uuid.uuid4()),
        "movie_title": "Film",
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
    cache: SizedLRU[uuid.UUID, ShowtimeInfo] = SizedLRU(budget, ttl=60)
    for info in big[:2]:
        cache.put(info.showtime_id, info, showtime_bytes(info))
    assert cache.get(big[0].showtime_id) is big[0]  # now the most recently used
    cache.put(big[2].showtime_id, big[2], showtime_bytes(big[2]))
    assert cache.get(big[1].showtime_id) is None and cache.get(big[0].showtime_id) is big[0]
    assert len(cache) == 2 and cache.total_bytes <= budget


def test_expired_showtimes_are_dropped_on_insert_not_only_when_full() -> None:
    now = [100.0]
    cache: SizedLRU[str, str] = SizedLRU(10_000, ttl=10, clock=lambda: now[0])
    for name in ("a", "b", "c"):
        cache.put(name, name.upper(), 1000)
    now[0] = 111.0
    cache.put("d", "D", 1000)
    assert len(cache) == 1 and cache.total_bytes == 1000
    assert cache.get("a") is None and cache.get("d") == "D"
    now[0] = 121.0
    assert cache.get("d") is None and cache.total_bytes == 0
