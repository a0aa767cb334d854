"""Every SQL statement of booking-service.

A status change is one guarded statement: ``UPDATE bookings ... WHERE status =
<expected> RETURNING`` with the booking's seats moved in the same statement (a
data-modifying CTE), so a seat leaves the active-seat index exactly when its
booking leaves an active status, and its valid tickets are voided when it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    Table,
    all_,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from booking_service.models import Booking, BookingSeat, Ticket
from servicekit import hotsql
from servicekit.events import EventEnvelope, hot_outbox_insert_per_row, outbox_insert_per_row, outbox_row
from servicekit.events.consumer import claim_sql

ACTIVE = ("pending", "confirmed")
_bookings = cast(Table, Booking.__table__)
_seats = cast(Table, BookingSeat.__table__)
_tickets = cast(Table, Ticket.__table__)


_BOOKING_COLUMNS = (
    "id, user_id, user_email, showtime_id, status, seats, total_amount, currency, hold_token, "
    "expires_at, movie_title, theater_name, time_zone, auditorium_name, starts_at, theater_id, "
    "theater_address, ends_at, created_at, updated_at"
)
# One round trip: the user's pending count, the booking, its seats and its outbox event. The
# count is read in the statement's snapshot, so two concurrent bookings of one user may both
# pass it: the per-user limit is soft by one or two under a burst (the seat index is the hard guard).
_NEW_EVENT = outbox_insert_per_row("new_booking")
_INSERT_BOOKING = text(
    f"""
    WITH new_booking AS (
        INSERT INTO bookings ({_BOOKING_COLUMNS})
        SELECT :id, :user_id, :user_email, :showtime_id, 'pending', :seats, :total_amount, :currency,
               :hold_token, :expires_at, :movie_title, :theater_name, :time_zone, :auditorium_name,
               :starts_at, :theater_id, :theater_address, :ends_at, :created_at, :created_at
        WHERE (SELECT count(*) FROM bookings
               WHERE user_id = :user_id AND status = 'pending' AND expires_at > now()) < :max_pending
        RETURNING id
    ), new_seats AS (
        INSERT INTO booking_seats (booking_id, seat_id, showtime_id, status, tier, price)
        SELECT new_booking.id, seat.seat_id, :showtime_id, 'pending', seat.tier, seat.price
        FROM new_booking, unnest(:seats, :tiers, :prices) AS seat(seat_id, tier, price)
    ), new_event AS (
        {_NEW_EVENT.sql}
    )
    SELECT count(*) FROM new_booking
    """
).bindparams(
    *(bindparam(name, type_=UUID(as_uuid=True)) for name in ("id", "user_id", "showtime_id", "theater_id")),
    bindparam("seats", type_=ARRAY(String)),
    bindparam("tiers", type_=ARRAY(String)),
    bindparam("prices", type_=ARRAY(Integer)),
    *_NEW_EVENT.bindparams,
)


async def insert_booking(
    connection: AsyncConnection | AsyncSession,
    booking: Booking,
    seats: Sequence[BookingSeat],
    event: EventEnvelope,
    max_pending: int,
) -> bool:
    """Insert a booking, its seats and ``event`` unless the user has ``max_pending`` unpaid ones.

    False when the user is at the limit; the active-seat index may raise IntegrityError.
    """
    values = {
        c: getattr(booking, c) for c in _BOOKING_COLUMNS.split(", ") if c not in ("status", "updated_at")
    }
    params = {
        **values,
        "tiers": [s.tier for s in seats],
        "prices": [s.price for s in seats],
        "max_pending": max_pending,
        **outbox_row(event),
    }
    return bool((await connection.execute(_INSERT_BOOKING, params)).scalar_one())


async def active_seats(
    connection: AsyncConnection | AsyncSession, showtime_id: uuid.UUID, seat_ids: Sequence[str]
) -> list[str]:
    """Which of ``seat_ids`` belong to an active booking."""
    stmt = select(BookingSeat.seat_id).where(
        BookingSeat.showtime_id == showtime_id,
        BookingSeat.seat_id.in_(seat_ids),
        BookingSeat.status.in_(ACTIVE),
    )
    return list((await connection.execute(stmt)).scalars())


async def seat_statuses(session: AsyncSession, showtime_id: uuid.UUID) -> list[tuple[str, str]]:
    """(seat_id, status) of every active seat of a showtime: one index scan."""
    stmt = select(BookingSeat.seat_id, BookingSeat.status).where(
        BookingSeat.showtime_id == showtime_id, BookingSeat.status.in_(ACTIVE)
    )
    return [(row.seat_id, row.status) for row in await session.execute(stmt)]


async def get_booking(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    return await session.get(Booking, booking_id, populate_existing=True)


async def list_user_bookings(
    session: AsyncSession, user_id: uuid.UUID, status: str | None, limit: int, offset: int
) -> tuple[list[Booking], int]:
    """One page of a user's bookings (newest first) and the total matching."""
    where: list[Any] = [Booking.user_id == user_id]
    if status is not None:
        where.append(Booking.status == status)
    total = (await session.execute(select(func.count()).select_from(Booking).where(*where))).scalar_one()
    page = select(Booking).where(*where).order_by(Booking.created_at.desc(), Booking.id)
    items = (await session.execute(page.limit(limit).offset(offset))).scalars().all()
    return list(items), int(total)


def _move(target_rows: Any, target: str, values: dict[str, Any]) -> Select[Booking]:
    """Move the bookings ``target_rows`` selects into ``target``, seats included."""
    moved: CTE = (
        update(_bookings)
        .where(target_rows)
        .values(status=target, updated_at=func.now(), **values)
        .returning(*_bookings.c)
        .cte("moved")
    )
    seats = (
        update(_seats)
        .where(_seats.c.booking_id.in_(select(moved.c.id)))
        .values(status=target)
        .cte("moved_seats")
    )
    stmt = select(aliased(Booking, moved)).add_cte(seats)
    if target not in ACTIVE:  # the booking ends: its tickets no longer admit anyone
        voided = (
            update(_tickets)
            .where(_tickets.c.booking_id.in_(select(moved.c.id)), _tickets.c.status == "valid")
            .values(status="void")
            .cte("voided_tickets")
        )
        stmt = stmt.add_cte(voided)
    return stmt.execution_options(populate_existing=True)


def starts_after(margin: timedelta) -> ColumnElement[bool]:
    """The booking's showtime starts more than ``margin`` from now."""
    return _bookings.c.starts_at > func.now() + margin


def no_ticket_admitted() -> ColumnElement[bool]:
    """None of the booking's tickets has been admitted.

    Every ticket of the booking is locked (``'admitted' <> ALL (ARRAY(SELECT status ... FOR
    UPDATE))``): an admission that committed after the statement began is seen, since a locked
    row is read in its latest version (a plain subquery reads the statement's snapshot and
    misses it), and one that comes later waits for this transaction and then finds the tickets
    void. Not ``NOT EXISTS (... FOR UPDATE ... status = 'admitted')``: PostgreSQL would filter
    on the snapshot's status before locking, and lock nothing.
    """
    statuses = select(_tickets.c.status).where(_tickets.c.booking_id == _bookings.c.id)
    locked = statuses.correlate(_bookings).with_for_update().scalar_subquery()
    return literal("admitted") != all_(func.array(locked))  # renders ARRAY((SELECT ...))


async def move_booking(
    session: AsyncSession,
    booking_id: uuid.UUID,
    expected: str,
    target: str,
    only_if: ColumnElement[bool] | None = None,
    **values: Any,
) -> Booking | None:
    """Guarded transition: moves the booking only if it is still in ``expected`` (and ``only_if``)."""
    guard = (_bookings.c.id == booking_id) & (_bookings.c.status == expected)
    if only_if is not None:
        guard = guard & only_if
    return (await session.execute(_move(guard, target, values))).scalars().first()


# The confirm, once per purchase: straight on asyncpg (servicekit.hotsql). The move
# ``move_booking`` would make from pending to confirmed, guarded by the hold being live
# (``expires_at`` in the database's clock), with the booking's seats.
CONFIRM_BOOKING = f"""
WITH moved AS (
    UPDATE bookings SET status = 'confirmed', payment_id = $2, updated_at = now()
    WHERE id = $1 AND status = 'pending' AND expires_at > now()
    RETURNING {", ".join(_bookings.c.keys())}
), moved_seats AS (
    UPDATE booking_seats SET status = 'confirmed' WHERE booking_id IN (SELECT id FROM moved)
)
SELECT * FROM moved
"""


async def confirm_booking(session: AsyncSession, booking_id: uuid.UUID, payment_id: str) -> Booking | None:
    """Confirm the booking if it is pending with its hold live (None otherwise): the booking as
    confirmed, a plain object (not in the session)."""
    row = await hotsql.fetchrow(session, CONFIRM_BOOKING, booking_id, payment_id)
    return None if row is None else Booking(**row)


# ``booking.confirmed``'s data (events.publish_booking_confirmed's, the same values and
# formats: starts_at as Python's isoformat of a UTC time) from the confirmed row and its tickets.
_CONFIRMED_DATA = """jsonb_build_object(
    'booking_id', moved.id::text, 'user_id', moved.user_id::text, 'user_email', moved.user_email,
    'showtime_id', moved.showtime_id::text, 'seats', to_jsonb(moved.seats),
    'movie_title', moved.movie_title, 'theater_name', moved.theater_name,
    'theater_address', moved.theater_address, 'auditorium_name', moved.auditorium_name,
    'starts_at', replace(to_char(moved.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                         '.000000', '') || '+00:00',
    'time_zone', moved.time_zone, 'total_amount', moved.total_amount, 'currency', moved.currency,
    'payment_id', moved.payment_id,
    'tickets', coalesce((SELECT jsonb_agg(jsonb_build_object('code', code, 'seat', seat_id) ORDER BY n)
                         FROM issued), '[]'::jsonb))"""


def confirm_on_payment_sql(processed: Table) -> str:
    """``payment.completed`` as one statement (a consumer's ``OneStatement``): the confirm of
    ``CONFIRM_BOOKING`` ($4 booking, $5 payment), a ticket per seat with the codes of $6 (one
    per seat at least; a booking with more seats is not confirmed here), ``booking.confirmed``
    ($7-$9, ``outbox_args``) and the dedupe record ($1-$3), which follows the move: no move, no
    claim, nothing written. The move also requires the event unrecorded, so a redelivery moves
    nothing even where the state machine would allow it."""
    return f"""
    WITH moved AS (
        UPDATE bookings SET status = 'confirmed', payment_id = $5, updated_at = now()
        WHERE id = $4 AND status = 'pending' AND expires_at > now()
          AND cardinality(seats) <= cardinality($6::text[])
          AND NOT EXISTS (SELECT 1 FROM {processed.fullname} WHERE event_id = $1 AND consumer = $2)
        RETURNING {", ".join(_bookings.c.keys())}
    ), moved_seats AS (
        UPDATE booking_seats SET status = 'confirmed' WHERE booking_id IN (SELECT id FROM moved)
    ), issued AS (
        SELECT seat.n, seat.seat_id, ($6::text[])[seat.n] AS code
        FROM moved, unnest(moved.seats) WITH ORDINALITY AS seat (seat_id, n)
    ), new_tickets AS (
        INSERT INTO tickets (code, booking_id, showtime_id, seat_id)
        SELECT issued.code, moved.id, moved.showtime_id, issued.seat_id FROM moved, issued
    ), new_event AS (
        {hot_outbox_insert_per_row("moved", 7, data=_CONFIRMED_DATA)}
    ), claimed AS (
        {claim_sql(processed, only_if="EXISTS (SELECT 1 FROM moved)")}
    )
    SELECT EXISTS (SELECT 1 FROM claimed) AS claimed
    """


async def expire_due_bookings(session: AsyncSession, limit: int) -> list[Booking]:
    """Expire pending bookings past their hold time; rows another replica is on are skipped."""
    due = (
        select(_bookings.c.id)
        .where(_bookings.c.status == "pending", _bookings.c.expires_at < func.now())
        .order_by(_bookings.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    guard = _bookings.c.id.in_(select(due.c.id)) & (_bookings.c.status == "pending")
    return list((await session.execute(_move(guard, "expired", {}))).scalars())


# Tickets. A booking made before booking kept its showtime's end counts as over this long
# after its start.
UNKNOWN_END_AFTER = timedelta(hours=3)


def showtime_over() -> ColumnElement[bool]:
    """The booking's showtime has ended (its tickets, never admitted, read ``expired``)."""
    ends_at = func.coalesce(_bookings.c.ends_at, _bookings.c.starts_at + UNKNOWN_END_AFTER)
    return ends_at <= func.now()


def doors_open(before_start: timedelta) -> ColumnElement[bool]:
    return _bookings.c.starts_at - before_start <= func.now()


def at_theater(theater_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The booking is for ``theater_id`` (any theater when None; a booking that does not know
    its theater, made before booking kept it, passes too)."""
    if theater_id is None:
        return true()
    return or_(_bookings.c.theater_id.is_(None), _bookings.c.theater_id == theater_id)


def _ticket_status() -> ColumnElement[str]:
    expired = and_(_tickets.c.status == "valid", showtime_over())
    return case((expired, "expired"), else_=_tickets.c.status).label("status")


# Every confirm issues tickets: straight on asyncpg (servicekit.hotsql).
INSERT_TICKETS = """
INSERT INTO tickets (code, booking_id, showtime_id, seat_id)
SELECT code, $3, $4, seat FROM unnest($1::text[], $2::text[]) AS issued (code, seat)
"""


async def insert_tickets(session: AsyncSession, booking: Booking, codes: Sequence[str]) -> None:
    """One valid ticket per seat of ``booking``, with the given codes (one statement)."""
    if len(codes) != len(booking.seats):
        raise ValueError("one code per seat")
    await hotsql.execute(
        session, INSERT_TICKETS, list(codes), list(booking.seats), booking.id, booking.showtime_id
    )


async def tickets_of(session: AsyncSession, booking_id: uuid.UUID) -> list[Row[Any]]:
    """(code, seat_id, status, admitted_at) of a booking's tickets in the order of its seats;
    ``expired`` computed."""
    stmt = (
        select(_tickets.c.code, _tickets.c.seat_id, _ticket_status(), _tickets.c.admitted_at)
        .join(_bookings, _bookings.c.id == _tickets.c.booking_id)
        .where(_tickets.c.booking_id == booking_id)
        .order_by(func.array_position(_bookings.c.seats, _tickets.c.seat_id))
    )
    return list((await session.execute(stmt)).all())


async def ticket_holder(session: AsyncSession, code: str) -> uuid.UUID | None:
    """The user whose booking the ticket belongs to; None for an unknown code."""
    stmt = select(_bookings.c.user_id).join(_tickets, _tickets.c.booking_id == _bookings.c.id)
    return (await session.execute(stmt.where(_tickets.c.code == code))).scalar_one_or_none()


async def any_ticket_admitted(session: AsyncSession, booking_id: uuid.UUID) -> bool:
    stmt = select(exists().where(_tickets.c.booking_id == booking_id, _tickets.c.status == "admitted"))
    return bool((await session.execute(stmt)).scalar_one())


_AT_THE_DOOR = (
    _tickets.c.seat_id,
    _tickets.c.admitted_at,
    _bookings.c.id.label("booking_id"),
    _bookings.c.user_id,
    _bookings.c.user_email,
    _bookings.c.showtime_id,
    _bookings.c.theater_id,
    _bookings.c.theater_name,
    _bookings.c.time_zone,
    _bookings.c.movie_title,
    _bookings.c.auditorium_name,
    _bookings.c.starts_at,
)


async def admit_ticket(
    session: AsyncSession, code: str, staff_id: uuid.UUID, doors: timedelta, theater_id: uuid.UUID | None
) -> Row[Any] | None:
    """Admit a valid ticket whose doors are open, whose showtime is not over, at its theater:
    one guarded update, so of two scanners at the same moment exactly one admits it. None when
    the ticket is not admitted (``ticket_at_door`` tells why)."""
    stmt = (
        update(_tickets)
        .where(_tickets.c.code == code, _tickets.c.status == "valid")
        .where(_tickets.c.booking_id == _bookings.c.id)
        .where(doors_open(doors), ~showtime_over(), at_theater(theater_id))
        .values(status="admitted", admitted_at=func.now(), admitted_by=staff_id)
        .returning(*_AT_THE_DOOR)
    )
    return (await session.execute(stmt)).first()


async def ticket_at_door(
    session: AsyncSession, code: str, doors: timedelta, theater_id: uuid.UUID | None
) -> Row[Any] | None:
    """The ticket with what the door checks (its stored status, ``over``, ``doors_open``,
    ``at_theater``), in the transaction's clock; None for an unknown code."""
    stmt = (
        select(
            *_AT_THE_DOOR,
            _tickets.c.status,
            showtime_over().label("over"),
            doors_open(doors).label("doors_open"),
            at_theater(theater_id).label("at_theater"),
        )
        .join(_bookings, _bookings.c.id == _tickets.c.booking_id)
        .where(_tickets.c.code == code)
    )
    return cast("Row[Any] | None", (await session.execute(stmt)).first())
