"""Every SQL statement of booking-service.

A status change is one guarded statement: ``UPDATE bookings ... WHERE status =
<expected> RETURNING`` with the booking's seats moved in the same statement (a
data-modifying CTE), so a seat leaves the active-seat index exactly when its
booking leaves an active status.
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
    Select,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from booking_service.models import Booking, BookingSeat
from servicekit.events import EventEnvelope, outbox_insert_per_row, outbox_row

ACTIVE = ("pending", "confirmed")
_bookings = cast(Table, Booking.__table__)
_seats = cast(Table, BookingSeat.__table__)


_BOOKING_COLUMNS = (
    "id, user_id, user_email, showtime_id, status, seats, total_amount, currency, hold_token, "
    "expires_at, movie_title, theater_name, time_zone, auditorium_name, starts_at, created_at, updated_at"
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
               :starts_at, :created_at, :created_at
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
    *(bindparam(name, type_=UUID(as_uuid=True)) for name in ("id", "user_id", "showtime_id")),
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
    return stmt.execution_options(populate_existing=True)


def hold_is_live() -> ColumnElement[bool]:
    """The booking's hold has not lapsed (read in the database's clock)."""
    return _bookings.c.expires_at > func.now()


def starts_after(margin: timedelta) -> ColumnElement[bool]:
    """The booking's showtime starts more than ``margin`` from now."""
    return _bookings.c.starts_at > func.now() + margin


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
