"""payment.completed as one statement (consumer.confirm_statement): it confirms a pending booking
with a live hold, with its tickets, its event and the dedupe record, or writes nothing at all and
leaves the event to the transactional handler (lifecycle.confirm_booking)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import events, repository
from booking_service.consumer import CONSUMER_NAME, confirm_statement
from booking_service.events import IssuedTicket
from booking_service.models import Booking, Ticket, outbox, processed_events
from servicekit import hotsql
from servicekit.events import new_event

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]
Sessions = async_sessionmaker[AsyncSession]


_CONFIRMED = select(outbox.c.payload).where(
    text("event_type = 'booking.confirmed' AND payload->'data'->>'booking_id' = :id")
)


async def _pending(make_showtime: Builder, book: Builder, seats: list[str]) -> uuid.UUID:
    response = await book(await make_showtime(), seats)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


def _payment(booking_id: uuid.UUID) -> Any:
    data = {"payment_id": str(uuid.uuid4()), "booking_id": str(booking_id), "amount": 1, "currency": "VND"}
    return new_event("payment.completed", "payment-service", data)


async def _run(db: Sessions, event: Any, seats_at_most: int = 10) -> bool:
    """The statement, run as the consumer runs it (autocommit); whether it claimed the event."""
    one = confirm_statement(seats_at_most)(event)
    assert one is not None
    engine = db.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        args = (event.event_id, CONSUMER_NAME, event.event_type, *one.args)
        row = await hotsql.fetchrow(connection, one.sql, *args)
    assert row is not None
    return bool(row["claimed"])


async def _written(db: Sessions, booking_id: uuid.UUID, event_id: uuid.UUID) -> tuple[str, int, int, int]:
    """The booking's status, its tickets, its booking.confirmed events, the event's dedupe records."""
    async with db() as session:
        status = (await session.execute(select(Booking.status).where(Booking.id == booking_id))).scalar_one()
        count = select(func.count()).select_from
        tickets = (await session.execute(count(Ticket).where(Ticket.booking_id == booking_id))).scalar_one()
        about = outbox.c.payload["data"]["booking_id"].astext == str(booking_id)
        confirmed = outbox.c.event_type == "booking.confirmed"
        announced = (await session.execute(count(outbox).where(about, confirmed))).scalar_one()
        recorded = processed_events.c.event_id == event_id
        claims = (await session.execute(count(processed_events).where(recorded))).scalar_one()
    return status, tickets, announced, claims


async def test_it_confirms_with_tickets_and_the_same_event_the_transactional_confirm_writes(
    db: Sessions, make_showtime: Builder, book: Builder
) -> None:
    booking_id = await _pending(make_showtime, book, ["D1", "D2"])
    payment = _payment(booking_id)
    assert await _run(db, payment)
    assert await _written(db, booking_id, payment.event_id) == ("confirmed", 2, 1, 1)
    async with db() as session:
        booking = await repository.get_booking(session, booking_id)
        assert booking is not None and booking.payment_id == payment.data["payment_id"]
        rows = await repository.tickets_of(session, booking_id)
        issued = [IssuedTicket(row.code, row.seat_id) for row in rows]
        about = {"id": str(booking_id)}
        written = (await session.execute(_CONFIRMED, about)).scalar_one()
        await events.publish_booking_confirmed(session, booking, issued)  # the Python way, rolled back
        other = _CONFIRMED.where(text("event_id <> :written"))
        python_way = (await session.execute(other, {**about, "written": written["event_id"]})).scalar_one()
        await session.rollback()
    assert written["data"] == python_way["data"], "one contract, byte for byte"
    assert [t["seat"] for t in written["data"]["tickets"]] == ["D1", "D2"]
    assert {k: written[k] for k in ("event_type", "producer", "version")} == {
        "event_type": "booking.confirmed", "producer": "booking-service", "version": 1,
    }  # fmt: skip


async def test_a_redelivery_writes_nothing(db: Sessions, make_showtime: Builder, book: Builder) -> None:
    booking_id = await _pending(make_showtime, book, ["E1"])
    payment = _payment(booking_id)
    assert await _run(db, payment)
    assert not await _run(db, payment), "the copy goes to the transactional handler's dedupe"
    assert await _written(db, booking_id, payment.event_id) == ("confirmed", 1, 1, 1)


async def test_a_lapsed_hold_an_ended_or_unknown_booking_and_too_many_seats_write_nothing(
    db: Sessions, make_showtime: Builder, book: Builder
) -> None:
    lapsed = await _pending(make_showtime, book, ["F1"])
    async with db() as session, session.begin():
        lapse = update(Booking).where(Booking.id == lapsed).values(expires_at=Booking.created_at)
        await session.execute(lapse)
    cancelled = await _pending(make_showtime, book, ["F2"])
    async with db() as session, session.begin():
        await session.execute(update(Booking).where(Booking.id == cancelled).values(status="cancelled"))
    many = await _pending(make_showtime, book, ["F3", "F4"])
    for booking_id, seats_at_most in ((lapsed, 10), (cancelled, 10), (many, 1)):
        payment = _payment(booking_id)
        assert not await _run(db, payment, seats_at_most)
        status, *written = await _written(db, booking_id, payment.event_id)
        assert status != "confirmed" and written == [0, 0, 0]  # the lapsed one may be swept meanwhile
    unknown = _payment(uuid.uuid4())
    assert not await _run(db, unknown)
