"""Tickets: issued on confirm, listed for the owner, shown as QR codes, voided when the booking ends."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import lifecycle
from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds
from booking_service.models import Booking, Ticket
from booking_service.tickets import render_qr_svg
from servicekit.testing import mint_token, wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
Probe = Callable[[dict[str, Any]], Awaitable[bool]]
Db = async_sessionmaker[AsyncSession]


@pytest.fixture
def confirm(db: Db, redis: Redis, settings: BookingSettings) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """Confirm a pending booking as payment.completed would (lifecycle.confirm_booking, committed)."""

    async def run(booking: dict[str, Any]) -> None:
        async with db() as session, session.begin():
            holds = SeatHolds(redis, settings)
            await lifecycle.confirm_booking(session, holds, uuid.UUID(booking["id"]), str(uuid.uuid4()))

    return run


@pytest.fixture
def confirmed(book: Builder, confirm: Callable[[dict[str, Any]], Awaitable[None]]) -> Builder:
    """A confirmed booking of ``seats`` for ``headers``' user."""

    async def build(showtime: dict[str, Any], seats: list[str], headers: dict[str, str]) -> dict[str, Any]:
        response = await book(showtime, seats, headers)
        assert response.status_code == 201, response.text
        booking = dict(response.json())
        await confirm(booking)
        return booking

    return build


@pytest.fixture
def staff(settings: BookingSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, roles=('user', 'staff'))}"}


async def _tickets(client: httpx.AsyncClient, booking: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await client.get(f"/bookings/{booking['id']}/tickets", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_confirmed_booking_has_one_ticket_per_seat_listed_for_its_owner_only(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    confirm: Callable[[dict[str, Any]], Awaitable[None]],
    user_headers: Headers,
    outbox_events: Events,
) -> None:
    headers = user_headers()
    booking = (await book(await make_showtime(), ["B3", "A1", "B2"], headers)).json()
    assert await _tickets(client, booking, headers) == [], "no tickets before the booking is confirmed"
    await confirm(booking)
    tickets = await _tickets(client, booking, headers)
    assert [t["seat"] for t in tickets] == ["B3", "A1", "B2"], "in the booking's seat order"
    for ticket in tickets:
        assert (ticket["status"], ticket["admitted_at"]) == ("valid", None)
        assert len(ticket["code"]) >= 22, "at least 128 bits, URL-safe base64"
        assert ticket["qr_url"] == f"/api/bookings/tickets/{ticket['code']}/qr.svg"
    assert len({t["code"] for t in tickets}) == 3
    confirmed_event = (await outbox_events(booking["id"]))[-1]
    assert confirmed_event["event_type"] == "booking.confirmed"
    assert confirmed_event["data"]["tickets"] == [{"code": t["code"], "seat": t["seat"]} for t in tickets]
    someone_else = await client.get(f"/bookings/{booking['id']}/tickets", headers=user_headers())
    assert someone_else.status_code == 404 and someone_else.json()["error"]["code"] == "booking_not_found"
    assert (await client.get(f"/bookings/{booking['id']}/tickets")).status_code == 401


async def test_the_qr_code_is_served_to_the_owner_and_staff_and_is_404_to_anyone_else(
    client: httpx.AsyncClient,
    settings: BookingSettings,
    make_showtime: Builder,
    confirmed: Builder,
    user_headers: Headers,
    staff: dict[str, str],
) -> None:
    headers = user_headers()
    booking = await confirmed(await make_showtime(), ["C1"], headers)
    [ticket] = await _tickets(client, booking, headers)
    url = f"/tickets/{ticket['code']}/qr.svg"
    admin = {"Authorization": f"Bearer {mint_token(settings, roles=('user', 'admin'))}"}
    for caller in (headers, staff, admin):
        response = await client.get(url, headers=caller)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.headers["cache-control"] == "private, max-age=86400"
        assert response.content == render_qr_svg(ticket["code"]), "the QR code of this ticket's code"
        assert response.content.startswith(b"<svg") and b"<path" in response.content
    for refused in (user_headers(), staff):
        unknown = await client.get("/tickets/not-a-ticket-code-at-all/qr.svg", headers=refused)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ticket_not_found"
    assert (await client.get(url, headers=user_headers())).status_code == 404, "another user's ticket"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(f"/tickets/{'x' * 129}/qr.svg", headers=headers)).status_code == 422


async def test_cancelling_a_confirmed_booking_voids_its_tickets(
    client: httpx.AsyncClient, make_showtime: Builder, confirmed: Builder, user_headers: Headers
) -> None:
    headers = user_headers()
    booking = await confirmed(await make_showtime(), ["D1", "D2"], headers)
    cancelled = await client.post(f"/bookings/{booking['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert {t["status"] for t in await _tickets(client, booking, headers)} == {"void"}


async def test_a_refund_at_payment_voids_the_tickets_not_admitted_and_keeps_the_admission(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    confirmed: Builder,
    user_headers: Headers,
    staff: dict[str, str],
    publish_payment: Builder,
    consumed: Probe,
) -> None:
    headers = user_headers()
    booking = await confirmed(await make_showtime(timedelta(minutes=30)), ["E1", "E2"], headers)
    first, _ = await _tickets(client, booking, headers)
    assert (await client.post("/checkin", json={"code": first["code"]}, headers=staff)).status_code == 200
    refunded = await publish_payment("payment.refunded", booking, reason="requested_by_admin")
    await wait_until(lambda: consumed(refunded), what="payment.refunded handled")
    after = await _tickets(client, booking, headers)
    assert [(t["seat"], t["status"]) for t in after] == [("E1", "admitted"), ("E2", "void")]
    assert after[0]["admitted_at"] is not None


async def test_a_ticket_of_a_showtime_that_is_over_reads_expired(
    client: httpx.AsyncClient, db: Db, make_showtime: Builder, confirmed: Builder, user_headers: Headers
) -> None:
    headers = user_headers()
    booking = await confirmed(await make_showtime(), ["F1"], headers)
    booking_id = uuid.UUID(booking["id"])
    async with db() as session, session.begin():
        over = {"starts_at": func.now() - timedelta(hours=2), "ends_at": func.now() - timedelta(seconds=1)}
        await session.execute(update(Booking).where(Booking.id == booking_id).values(**over))
    [ticket] = await _tickets(client, booking, headers)
    assert ticket["status"] == "expired"
    async with db() as session:
        stored = await session.scalar(select(Ticket.status).where(Ticket.code == ticket["code"]))
    assert stored == "valid", "expired is computed on read, never stored"
