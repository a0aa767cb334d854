"""Showtime cut-offs: sales close, holds never outlive them, cancellations close before the start."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import lifecycle
from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds, seat_key
from booking_service.models import Booking
from servicekit.testing import wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
Probe = Callable[[dict[str, Any]], Awaitable[bool]]
BookingClient = Callable[[BookingSettings], AbstractAsyncContextManager[httpx.AsyncClient]]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_sales_close_the_configured_minutes_before_the_start(
    booking_client: BookingClient,
    settings_with: Callable[..., BookingSettings],
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
) -> None:
    showtime = await make_showtime(timedelta(minutes=60))
    async with booking_client(settings_with(sales_close_minutes_before_start=90)) as closed:
        response = await book(showtime, ["A1"], user_headers(), via=closed)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "sales_closed"
    assert (await book(showtime, ["A1"])).status_code == 201, "sales close at the start by default"


async def test_a_hold_never_outlives_the_close_of_sales(
    booking_client: BookingClient,
    settings_with: Callable[..., BookingSettings],
    settings: BookingSettings,
    redis: Redis,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
) -> None:
    showtime = await make_showtime(timedelta(minutes=10))
    late_sales = settings_with(hold_ttl_seconds=3600, sales_close_minutes_before_start=5)
    async with booking_client(late_sales) as client:
        response = await book(showtime, ["B1"], user_headers(), via=client)
    assert response.status_code == 201, response.text
    booking = response.json()
    close_of_sales = _at(booking["starts_at"]) - timedelta(minutes=5)
    assert abs((_at(booking["expires_at"]) - close_of_sales).total_seconds()) < 1
    ttl_ms = await redis.pttl(seat_key(settings, uuid.UUID(showtime["showtime_id"]), "B1"))
    assert 0 < ttl_ms <= 5 * 60 * 1000 + 1000, "the Redis hold ends with the sales, not an hour later"


async def test_a_payment_that_lands_after_the_hold_lapsed_expires_the_booking_instead_of_confirming(
    db: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: BookingSettings,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    outbox_events: Events,
) -> None:
    showtime = await make_showtime()
    response = await book(showtime, ["C1"], user_headers())
    assert response.status_code == 201, response.text
    booking_id = uuid.UUID(response.json()["id"])
    async with db() as session, session.begin():
        # The hold lapses inside this transaction, so no sweeper can expire it first.
        lapsed = update(Booking).where(Booking.id == booking_id).values(expires_at=Booking.created_at)
        await session.execute(lapsed)
        await lifecycle.confirm_booking(session, SeatHolds(redis, settings), booking_id, str(uuid.uuid4()))
    events = await outbox_events(str(booking_id))
    assert [e["event_type"] for e in events] == ["booking.created", "booking.expired"]
    assert (await book(showtime, ["C1"])).status_code == 201, "its seats are free again"


async def test_a_confirmed_booking_cannot_be_cancelled_after_the_cut_off_but_a_pending_one_can(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    consumed: Probe,
    internal_headers: dict[str, str],
) -> None:
    showtime, headers = await make_showtime(timedelta(minutes=20)), user_headers()
    confirmed = (await book(showtime, ["D1"], headers)).json()
    pending = (await book(showtime, ["D2"], headers)).json()
    payment = await publish_payment("payment.completed", confirmed)
    await wait_until(lambda: consumed(payment), what="payment.completed handled")
    response = await client.post(f"/bookings/{confirmed['id']}/cancel", headers=headers)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "cancellation_closed"
    assert (await client.get(f"/bookings/{confirmed['id']}", headers=headers)).json()["status"] == "confirmed"
    response = await client.post(f"/bookings/{pending['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    view = (await client.get(f"/internal/bookings/{confirmed['id']}", headers=internal_headers)).json()
    assert _at(view["cancellable_until"]) == _at(view["starts_at"]) - timedelta(minutes=30)
