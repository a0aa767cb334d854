"""The rendered-layout cache is bounded by (estimated) bytes, not by how many showtimes it holds."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Callable

from movie_service.seat_map import SeatMapLayouts, ShowtimeFacts, build_layout, layout_bytes
from servicekit.lru import SizedLRU


def test_the_size_estimate_is_close_to_the_memory_a_layout_takes(
    showtime_facts: Callable[..., ShowtimeFacts],
) -> None:
    tracemalloc.start()
    try:
        layout = build_layout("v1", showtime_facts(100, 100))
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert taken * 0.5 < layout_bytes(layout) < taken * 3


def test_big_layouts_push_the_least_recently_used_out_within_the_budget(
    showtime_facts: Callable[..., ShowtimeFacts],
) -> None:
    big = build_layout("v1", showtime_facts(100, 100))  # 10,000 seats
    layouts = SeatMapLayouts(max_bytes=int(layout_bytes(big) * 2.5))
    ids = [uuid.uuid4() for _ in range(4)]
    layouts.put(ids[0], big)
    layouts.put(ids[1], build_layout("v1", showtime_facts(100, 100)))
    assert layouts.get(ids[0], "v1") is big  # now the most recently used
    layouts.put(ids[2], build_layout("v1", showtime_facts(100, 100)))
    assert layouts.get(ids[1], "v1") is None and layouts.get(ids[0], "v1") is big
    for small in ids[3:]:
        layouts.put(small, build_layout("v1", showtime_facts(10, 10)))
    assert layouts.total_bytes <= int(layout_bytes(big) * 2.5) and len(layouts) == 3


def test_a_layout_larger_than_the_whole_budget_is_not_kept(
    showtime_facts: Callable[..., ShowtimeFacts],
) -> None:
    layouts = SeatMapLayouts(max_bytes=10_000)
    showtime = uuid.uuid4()
    layouts.put(showtime, build_layout("v1", showtime_facts(100, 100)))
    assert layouts.get(showtime, "v1") is None and layouts.total_bytes == 0


def test_expired_entries_are_swept_on_insert_without_being_read() -> None:
    now = [0.0]
    cache: SizedLRU[str, str] = SizedLRU(1000, ttl=10, clock=lambda: now[0])
    cache.put("a", "A", 100)
    cache.put("b", "B", 100)
    now[0] = 11.0
    cache.put("c", "C", 100)
    assert len(cache) == 1 and cache.total_bytes == 100 and cache.get("c") == "C"
    now[0] = 21.0
    assert cache.get("c") is None and cache.total_bytes == 0
