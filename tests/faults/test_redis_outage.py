"""Redis unreachable, and Redis back empty, with booking-service running as a real process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from faultkit import Stack, User, forget_redis_keys

from servicekit.testing import wait_until

FAST_SECONDS = 2.0


async def book(
    client: httpx.AsyncClient, user: User, showtime: dict[str, Any], seats: list[str]
) -> httpx.Response:
    body = {"showtime_id": showtime["id"], "seat_ids": seats}
    return await client.post("/book", json=body, headers=user.headers)


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_redis_unreachable_booking_is_a_fast_503_and_nothing_is_double_booked(
    stack: Stack, new_user: Callable[[], User]
) -> None:
    showtime = await stack.showtime()
    users = [new_user() for _ in range(10)]
    async with httpx.AsyncClient(base_url=stack.url("booking"), timeout=10) as client:
        warm = await book(client, users[0], showtime, ["A1"])  # the showtime is known, A1 held
        assert warm.status_code == 201, warm.text
        await stack.background.cut(stack.background.redis)
        answers = await asyncio.gather(*(timed(book(client, u, showtime, ["A2", "A3"])) for u in users))
        for response, seconds in answers:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"], response.text
            assert seconds < FAST_SECONDS, f"a 503 took {seconds:.2f}s"
        await stack.background.restore(stack.background.redis)

        async def booked_again() -> httpx.Response | None:
            response = await book(client, users[1], showtime, ["A2", "A3"])
            return response if response.status_code == 201 else None

        await _wait(booked_again, "booking to recover once Redis is back")
        second = await book(client, users[2], showtime, ["A3"])
        assert second.status_code == 409, second.text
        internal = {"X-Internal-Token": "dev-only-internal-token"}
        status = await client.get(f"/internal/showtimes/{showtime['id']}/seat-status", headers=internal)
        assert sorted(status.json()["held"]) == ["A1", "A2", "A3"], status.text
        for user in users[3:]:
            mine = await client.get("/bookings", headers=user.headers)
            assert mine.json()["total"] == 0, "nothing was booked during the outage"


async def test_redis_back_empty_with_holds_outstanding_the_database_still_refuses(
    stack: Stack, new_user: Callable[[], User]
) -> None:
    showtime = await stack.showtime()
    holder, latecomer = new_user(), new_user()
    async with httpx.AsyncClient(base_url=stack.url("booking"), timeout=10) as client:
        held = await book(client, holder, showtime, ["B1", "B2"])
        assert held.status_code == 201, held.text
        await stack.background.cut(stack.background.redis)
        assert await forget_redis_keys() > 0, "the holds were in Redis"
        await stack.background.restore(stack.background.redis)

        async def answered() -> httpx.Response | None:
            response = await book(client, latecomer, showtime, ["B2", "B3"])
            return response if response.status_code != 503 else None

        refused = await _wait(answered, "booking to answer once Redis is back")
        assert refused.status_code == 409, refused.text
        free = await book(client, latecomer, showtime, ["B3"])
        assert free.status_code == 201, "the refused request left no hold on B3"
        mine = await client.get(f"/bookings/{held.json()['id']}", headers=holder.headers)
        assert mine.json()["status"] == "pending" and mine.json()["seats"] == ["B1", "B2"]


async def _wait(probe: Any, what: str) -> Any:
    return await wait_until(probe, within=15, interval=0.2, what=what)
