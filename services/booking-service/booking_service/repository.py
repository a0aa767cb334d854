"""Every SQL statement of booking-service.

A status change is one guarded statement: ``UPDATE bookings ... WHERE status =
<expected> RETURNING`` with the booking's seats moved in the same statement (a
data-modifying CTE), so a seat leaves the active-seat index exactly when its
booking leaves an active status.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CTE, Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from booking_service.models import Booking, BookingSeat

ACTIVE = ("pending", "confirmed")
_bookings = cast(Table, Booking.__table__)
_seats = cast(Table, BookingSeat.__table__)


async def add_booking(session: AsyncSession, booking: Booking, seats: Sequence[BookingSeat]) -> Booking:
    """Insert a booking and its seats; the active-seat index may raise IntegrityError."""
    session.add(booking)
    session.add_all(seats)
    await session.flush()
    return booking


async def count_pending(session: AsyncSession, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Booking.user_id == user_id, Booking.status == "pending", Booking.expires_at > func.now()
    )
    return int((await session.execute(stmt)).scalar_one())


async def active_seats(session: AsyncSession, showtime_id: uuid.UUID, seat_ids: Sequence[str]) -> list[str]:
    """Which of ``seat_ids`` belong to an active booking."""
    stmt = select(BookingSeat.seat_id).where(
        BookingSeat.showtime_id == showtime_id,
        BookingSeat.seat_id.in_(seat_ids),
        BookingSeat.status.in_(ACTIVE),
    )
    return list((await session.execute(stmt)).scalars())


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


async def move_booking(
    session: AsyncSession, booking_id: uuid.UUID, expected: str, target: str, **values: Any
) -> Booking | None:
    """Guarded transition: moves the booking only if it is still in ``expected``."""
    guard = (_bookings.c.id == booking_id) & (_bookings.c.status == expected)
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
