"""Check-in at the door: staff admit a ticket once; every refusal says why; races have one winner."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import lifecycle, repository
from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds
from booking_service.models import Booking, Ticket
from servicekit.testing import mint_token, wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
Db = async_sessionmaker[AsyncSession]
SOON = timedelta(minutes=40)  # doors open (60 minutes before), cancellations too (until 30 before)
DOORS = timedelta(minutes=60)


@pytest.fixture
def door_booking(
    book: Builder, db: Db, redis: Redis, settings: BookingSettings, user_headers: Headers
) -> Builder:
    """A confirmed booking (confirmed as payment.completed would) with its tickets and headers."""

    async def build(showtime: dict[str, Any], seats: list[str]) -> dict[str, Any]:
        headers = user_headers()
        response = await book(showtime, seats, headers)
        assert response.status_code == 201, response.text
        booking = dict(response.json())
        async with db() as session, session.begin():
            holds = SeatHolds(redis, settings)
            await lifecycle.confirm_booking(session, holds, uuid.UUID(booking["id"]), str(uuid.uuid4()))
        async with db() as session:
            stmt = select(Ticket.code).where(Ticket.booking_id == uuid.UUID(booking["id"]))
            codes = list((await session.execute(stmt.order_by(Ticket.seat_id))).scalars())
        return {**booking, "codes": codes, "headers": headers}

    return build


def _bearer(settings: BookingSettings, *roles: str, user_id: uuid.UUID | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, user_id=user_id, roles=('user', *roles))}"}


@pytest.fixture
def staff(settings: BookingSettings) -> dict[str, str]:
    return _bearer(settings, "staff")


def _checkins(outcome: str) -> float:
    return REGISTRY.get_sample_value("ticket_checkins_total", {"outcome": outcome}) or 0.0


def _refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return dict(error)


async def test_the_first_scan_admits_the_second_is_refused_with_the_first_admissions_time(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    door_booking: Builder,
    staff: dict[str, str],
    outbox_events: Events,
) -> None:
    showtime = await make_showtime(SOON)
    booking = await door_booking(showtime, ["A1", "A2"])
    admitted_before = _checkins("admitted")
    first = await client.post("/checkin", json={"code": booking["codes"][0]}, headers=staff)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["admitted"], body["seat"], body["movie_title"]) == (True, "A1", "The Test Reel")
    assert body["auditorium"] == showtime["auditorium_name"] and body["starts_at"] == booking["starts_at"]
    assert _checkins("admitted") == admitted_before + 1
    again = _refused(
        await client.post("/checkin", json={"code": booking["codes"][0]}, headers=staff), "already_admitted"
    )
    assert datetime.fromisoformat(again["details"]["admitted_at"]) == datetime.fromisoformat(
        body["admitted_at"]
    )
    assert again["details"]["seat"] == "A1"
    second_seat = await client.post("/checkin", json={"code": f"  {booking['codes'][1]}\n"}, headers=staff)
    assert second_seat.status_code == 200, "each ticket admits one person; codes are trimmed"
    admitted = [e for e in await outbox_events(booking["id"]) if e["event_type"] == "ticket.admitted"]
    assert [e["data"]["seat"] for e in admitted] == ["A1", "A2"], (
        "one event per admission, none for a refusal"
    )
    assert set(admitted[0]["data"]) == {
        "booking_id", "user_id", "user_email", "showtime_id", "seat", "theater_id", "admitted_at",
        "admitted_by",
    }  # fmt: skip
    assert admitted[0]["data"]["theater_id"] == showtime["theater_id"]


async def test_only_staff_and_admins_check_in(
    client: httpx.AsyncClient,
    db: Db,
    settings: BookingSettings,
    make_showtime: Builder,
    door_booking: Builder,
) -> None:
    booking = await door_booking(await make_showtime(SOON), ["B1"])
    scan = {"code": booking["codes"][0]}
    assert (await client.post("/checkin", json=scan)).status_code == 401
    for user in (_bearer(settings), booking["headers"]):
        refused = await client.post("/checkin", json=scan, headers=user)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    admin_id = uuid.uuid4()
    by_admin = await client.post("/checkin", json=scan, headers=_bearer(settings, "admin", user_id=admin_id))
    assert by_admin.status_code == 200, by_admin.text
    async with db() as session:
        ticket = await session.get(Ticket, booking["codes"][0])
    assert ticket is not None and (ticket.status, ticket.admitted_by) == ("admitted", admin_id)


async def test_an_unknown_code_is_404_and_a_bad_body_422(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    unknown_before = _checkins("unknown")
    response = await client.post("/checkin", json={"code": "https://example.com/not-a-ticket"}, headers=staff)
    assert response.status_code == 404 and response.json()["error"]["code"] == "ticket_not_found"
    assert _checkins("unknown") == unknown_before + 1
    for body in ({}, {"code": ""}, {"code": "x" * 129}, {"code": "abc", "theater_id": "nope"}):
        assert (await client.post("/checkin", json=body, headers=staff)).status_code == 422, body


async def test_before_the_doors_open_a_ticket_is_too_early(
    client: httpx.AsyncClient, make_showtime: Builder, door_booking: Builder, staff: dict[str, str]
) -> None:
    booking = await door_booking(await make_showtime(timedelta(hours=3)), ["C1"])
    early_before = _checkins("too_early")
    error = _refused(
        await client.post("/checkin", json={"code": booking["codes"][0]}, headers=staff), "too_early"
    )
    opens = datetime.fromisoformat(error["details"]["doors_open_at"])
    assert opens == datetime.fromisoformat(booking["starts_at"]) - DOORS
    assert _checkins("too_early") == early_before + 1


async def test_a_scanner_naming_another_theater_is_refused_and_its_own_theater_admits(
    client: httpx.AsyncClient, make_showtime: Builder, door_booking: Builder, staff: dict[str, str]
) -> None:
    showtime = await make_showtime(SOON)
    booking = await door_booking(showtime, ["C2"])
    elsewhere = {"code": booking["codes"][0], "theater_id": str(uuid.uuid4())}
    error = _refused(await client.post("/checkin", json=elsewhere, headers=staff), "wrong_theater")
    assert error["details"]["theater_name"] == showtime["theater_name"]
    here = {"code": booking["codes"][0], "theater_id": showtime["theater_id"]}
    assert (await client.post("/checkin", json=here, headers=staff)).status_code == 200


async def test_a_void_ticket_and_an_expired_one_are_refused(
    client: httpx.AsyncClient, db: Db, make_showtime: Builder, door_booking: Builder, staff: dict[str, str]
) -> None:
    showtime = await make_showtime(SOON)
    cancelled, over = await door_booking(showtime, ["D1"]), await door_booking(showtime, ["D2"])
    response = await client.post(f"/bookings/{cancelled['id']}/cancel", headers=cancelled["headers"])
    assert response.status_code == 200
    _refused(
        await client.post("/checkin", json={"code": cancelled["codes"][0]}, headers=staff), "ticket_void"
    )
    async with db() as session, session.begin():
        ended = {"starts_at": func.now() - timedelta(hours=2), "ends_at": func.now() - timedelta(minutes=1)}
        await session.execute(update(Booking).where(Booking.id == uuid.UUID(over["id"])).values(**ended))
    _refused(await client.post("/checkin", json={"code": over["codes"][0]}, headers=staff), "ticket_expired")


async def test_a_booking_that_does_not_know_its_showtime_end_or_theater_counts_three_hours_and_any_door(
    client: httpx.AsyncClient, db: Db, make_showtime: Builder, door_booking: Builder, staff: dict[str, str]
) -> None:
    showtime = await make_showtime(SOON)
    running, long_over = await door_booking(showtime, ["D3"]), await door_booking(showtime, ["D4"])
    for booking, started in ((running, timedelta(hours=2)), (long_over, repository.UNKNOWN_END_AFTER)):
        old = {"starts_at": func.now() - started, "ends_at": None, "theater_id": None}
        async with db() as session, session.begin():
            await session.execute(update(Booking).where(Booking.id == uuid.UUID(booking["id"])).values(**old))
    scan = {"code": running["codes"][0], "theater_id": str(uuid.uuid4())}
    assert (await client.post("/checkin", json=scan, headers=staff)).status_code == 200
    _refused(
        await client.post("/checkin", json={"code": long_over["codes"][0]}, headers=staff), "ticket_expired"
    )


async def test_a_booking_with_an_admitted_ticket_cannot_be_cancelled(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    door_booking: Builder,
    staff: dict[str, str],
    internal_headers: dict[str, str],
) -> None:
    booking = await door_booking(await make_showtime(SOON), ["E1", "E2"])
    assert (
        await client.post("/checkin", json={"code": booking["codes"][0]}, headers=staff)
    ).status_code == 200
    error = _refused(
        await client.post(f"/bookings/{booking['id']}/cancel", headers=booking["headers"]), "tickets_admitted"
    )
    assert "admitted" in error["message"]
    current = (await client.get(f"/bookings/{booking['id']}", headers=booking["headers"])).json()
    assert current["status"] == "confirmed"
    view = (await client.get(f"/internal/bookings/{booking['id']}", headers=internal_headers)).json()
    assert view["admitted"] is True, "payment refuses the owner's refund on it"
    assert (
        await client.post("/checkin", json={"code": booking["codes"][1]}, headers=staff)
    ).status_code == 200


async def test_concurrent_scans_of_one_ticket_admit_it_exactly_once(
    client: httpx.AsyncClient, make_showtime: Builder, door_booking: Builder, staff: dict[str, str]
) -> None:
    showtime = await make_showtime(SOON)
    seats = [f"{row}{n}" for row in "ABCDE" for n in range(1, 11)]
    codes = [
        code for i in range(0, 50, 10) for code in (await door_booking(showtime, seats[i : i + 10]))["codes"]
    ]
    for round_number, code in enumerate(codes):
        scanners = random.Random(round_number).randint(2, 8)
        answers = await asyncio.gather(
            *(client.post("/checkin", json={"code": code}, headers=staff) for _ in range(scanners))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * (scanners - 1), f"round {round_number}: {statuses}"
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"already_admitted"}


async def test_a_cancel_racing_an_admission_has_one_winner(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    door_booking: Builder,
    staff: dict[str, str],
) -> None:
    showtime = await make_showtime(SOON)
    for round_number in range(20):
        booking = await door_booking(showtime, [f"{'AB'[round_number // 10]}{round_number % 10 + 1}"])
        scan = client.post("/checkin", json={"code": booking["codes"][0]}, headers=staff)
        cancel = client.post(f"/bookings/{booking['id']}/cancel", headers=booking["headers"])
        admitted, cancelled = await asyncio.gather(scan, cancel)
        outcome = (admitted.status_code, cancelled.status_code)
        assert outcome in ((200, 409), (409, 200)), f"round {round_number}: {outcome}"
        loser = cancelled if admitted.status_code == 200 else admitted
        assert loser.json()["error"]["code"] == (
            "tickets_admitted" if admitted.status_code == 200 else "ticket_void"
        )


async def test_a_cancel_waits_for_an_admission_in_flight_and_then_sees_it(
    client: httpx.AsyncClient, db: Db, make_showtime: Builder, door_booking: Builder
) -> None:
    """The guard reads the tickets FOR UPDATE: an admission committed after the cancel's
    statement began is seen (a plain subquery would miss it and cancel an admitted booking)."""
    booking = await door_booking(await make_showtime(SOON), ["F1"])
    async with db() as scanner:
        admitted = await repository.admit_ticket(scanner, booking["codes"][0], uuid.uuid4(), DOORS, None)
        assert admitted is not None
        cancel = asyncio.create_task(
            client.post(f"/bookings/{booking['id']}/cancel", headers=booking["headers"])
        )
        await wait_until(lambda: _waiting_for_a_lock(db), what="the cancel waits for the ticket's lock")
        await scanner.commit()
    _refused(await cancel, "tickets_admitted")


LOCK_WAITS = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


async def _waiting_for_a_lock(db: Db) -> bool:
    async with db() as session:
        waiting = await session.scalar(text(LOCK_WAITS))
    return bool(waiting)
