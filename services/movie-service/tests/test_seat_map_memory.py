"""The rendered-layout and seat-status caches are bounded by (estimated) bytes, not by how many
showtimes they hold."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from collections.abc import Callable

from movie_service.seat_map import SeatMapLayouts, ShowtimeFacts, build_layout, layout_bytes
from movie_service.seat_status import SeatStatuses, SeatStatusReply, statuses_bytes


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


def test_the_size_estimate_of_seat_statuses_is_close_to_their_memory() -> None:
    seats = [f"R{n // 100}-{n % 100}" for n in range(10_000)]
    body = json.dumps({"showtime_id": str(uuid.uuid4()), "held": seats[:4000], "booked": seats[4000:]})
    tracemalloc.start()
    try:
        reply = SeatStatusReply.model_validate_json(body)
        statuses = SeatStatuses(1, frozenset(reply.held), frozenset(reply.booked))
        del reply
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert taken * 0.5 < statuses_bytes(statuses) < taken * 2
