"""No seat is held or sold twice: concurrent requests race for real on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service.config import BookingSettings
from booking_service.holds import seat_key
from booking_service.models import Booking, BookingSeat

Builder = Callable[..., Awaitable[Any]]
Sessions = async_sessionmaker[AsyncSession]


async def _active_bookings(db: Sessions, showtime_id: str) -> list[Booking]:
    async with db() as session:
        stmt = select(Booking).where(
            Booking.showtime_id == uuid.UUID(showtime_id), Booking.status.in_(["pending", "confirmed"])
        )
        return list((await session.execute(stmt)).scalars())


async def test_200_users_race_for_two_seats_and_exactly_one_wins(
    make_showtime: Builder, book: Builder, db: Sessions
) -> None:
    showtime = await make_showtime()
    responses = await asyncio.gather(*(book(showtime, ["A1", "A2"]) for _ in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 199}, statuses
    assert all(r.json()["error"]["details"] for r in responses if r.status_code == 409)
    active = await _active_bookings(db, showtime["showtime_id"])
    assert len(active) == 1 and sorted(active[0].seats) == ["A1", "A2"]


async def test_overlapping_multi_seat_requests_never_leave_a_partial_hold(
    make_showtime: Builder, book: Builder, db: Sessions, redis: Redis, settings: BookingSettings
) -> None:
    showtime = await make_showtime()
    wanted = [[f"B{n}", f"B{n + 1}", f"B{n + 2}"] for n in range(1, 9)] * 6
    responses = await asyncio.gather(*(book(showtime, seats) for seats in wanted))
    assert {r.status_code for r in responses} <= {201, 409}
    winners = await _active_bookings(db, showtime["showtime_id"])
    assert len(winners) == sum(r.status_code == 201 for r in responses) >= 1
    owner = {seat: b.hold_token for b in winners for seat in b.seats}
    assert len(owner) == 3 * len(winners), "two winners share a seat"
    sid = uuid.UUID(showtime["showtime_id"])
    for seat in sorted({s for seats in wanted for s in seats}):
        assert await redis.get(seat_key(settings, sid, seat)) == owner.get(seat), seat


async def test_when_redis_loses_the_holds_the_database_still_refuses_the_seat(
    make_showtime: Builder,
    book: Builder,
    db: Sessions,
    redis: Redis,
    settings: BookingSettings,
    forget_run_keys: Callable[[], Awaitable[int]],
) -> None:
    showtime = await make_showtime()
    assert (await book(showtime, ["C1", "C2"])).status_code == 201
    assert await forget_run_keys() >= 2
    response = await book(showtime, ["C3", "C2"])
    assert response.status_code == 409, response.text
    assert response.json()["error"]["details"] == ["C2"]
    async with db() as session:
        stmt = select(func.count()).where(BookingSeat.showtime_id == uuid.UUID(showtime["showtime_id"]))
        assert (await session.execute(stmt)).scalar_one() == 2
    sid = uuid.UUID(showtime["showtime_id"])
    assert await redis.get(seat_key(settings, sid, "C3")) is None, "the refused hold was released"
