"""The rules of booking: holding seats, reading bookings, the seat statuses of a showtime.

A booking costs one Redis round trip (the hold script) and one transaction of one
statement (see repository.insert_booking);
the showtime look-up is cached (see catalog.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from booking_service import events, lifecycle, repository
from booking_service.catalog import SeatInfo, ShowtimeCatalog, ShowtimeInfo
from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds, new_hold_token
from booking_service.metrics import BOOKINGS
from booking_service.models import Booking, BookingSeat
from booking_service.schemas import BookRequest, InternalBookingOut, SeatStatusOut
from servicekit.components import Component
from servicekit.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from servicekit.events import OutboxWakeup
from servicekit.security import Principal

logger = logging.getLogger("booking_service")


@dataclass(frozen=True)
class BookingContext:
    """What the booking rules need beyond the session: made once at start-up."""

    settings: BookingSettings
    catalog: ShowtimeCatalog
    holds: SeatHolds
    # The service's engine in autocommit mode: POST /book is one statement, atomic on its
    # own, so it needs no BEGIN and COMMIT round trips around it.
    autocommit: AsyncEngine
    # That statement writes booking.created outside a session: it wakes the outbox relay itself.
    outbox_wakeup: OutboxWakeup


BOOKING: Component[BookingContext] = Component("booking context")


def seat_order(seat_id: str) -> tuple[str, int]:
    match = re.match(r"([A-Za-z]+)(\d+)", seat_id)
    return (match.group(1), int(match.group(2))) if match else (seat_id, 0)


def seats_taken(seat_ids: Sequence[str]) -> Conflict:
    taken = sorted(seat_ids, key=seat_order)
    return Conflict(f"Seats not available: {', '.join(taken)}", code="seats_unavailable", details=taken)


def sales_close_at(settings: BookingSettings, starts_at: datetime) -> datetime:
    """When sales of a showtime close: its start, or the configured minutes before it."""
    return starts_at - timedelta(minutes=settings.sales_close_minutes_before_start)


def cancellable_until(settings: BookingSettings, starts_at: datetime) -> datetime:
    """Until when a confirmed booking may still be cancelled by its owner (and refunded)."""
    return starts_at - timedelta(minutes=settings.cancellation_cutoff_minutes)


def choose_seats(
    settings: BookingSettings, showtime: ShowtimeInfo, seat_ids: Sequence[str]
) -> list[SeatInfo]:
    """The requested seats of a bookable showtime (409 started or sales closed, 422 too many or unknown)."""
    now = datetime.now(UTC)
    if showtime.starts_at <= now:
        raise Conflict("This showtime has already started", code="showtime_started")
    if sales_close_at(settings, showtime.starts_at) <= now:
        minutes = settings.sales_close_minutes_before_start
        message = f"Sales for this showtime closed {minutes} minutes before it starts"
        raise Conflict(message, code="sales_closed")
    if len(seat_ids) > settings.max_seats_per_booking:
        raise Unprocessable(
            f"At most {settings.max_seats_per_booking} seats per booking", code="too_many_seats"
        )
    unknown = [s for s in seat_ids if s not in showtime.seat_map]
    if unknown:
        message = f"Unknown seats for this showtime: {', '.join(unknown)}"
        raise Unprocessable(message, code="unknown_seats", details=unknown)
    return [showtime.seat_map[s] for s in seat_ids]


async def book_seats(ctx: BookingContext, user: Principal, request: BookRequest) -> Booking:
    """Hold the seats in Redis (all or none), then write the pending booking; 409 names taken seats."""
    showtime = await ctx.catalog.get(request.showtime_id)
    seats = choose_seats(ctx.settings, showtime, request.seat_ids)
    token, expires_at = new_hold_token(), hold_expiry(ctx.settings, showtime.starts_at)
    ttl = (expires_at - datetime.now(UTC)).total_seconds()
    taken = await ctx.holds.hold(showtime.showtime_id, request.seat_ids, token, ttl)
    if taken:
        raise seats_taken(taken)
    try:
        return await _write_booking(ctx, user, showtime, seats, (token, expires_at))
    except BaseException:
        await ctx.holds.release(showtime.showtime_id, request.seat_ids, token)
        raise


def hold_expiry(settings: BookingSettings, starts_at: datetime) -> datetime:
    """A hold lasts the hold time, and never past the close of sales (so never past the start)."""
    return min(
        datetime.now(UTC) + timedelta(seconds=settings.hold_ttl_seconds), sales_close_at(settings, starts_at)
    )


async def _write_booking(
    ctx: BookingContext,
    user: Principal,
    showtime: ShowtimeInfo,
    seats: list[SeatInfo],
    hold: tuple[str, datetime],
) -> Booking:
    """One statement: the per-user limit (soft under a burst), the booking, its seats, its event."""
    booking, rows = _new_booking(user, showtime, seats, hold)
    limit = ctx.settings.max_pending_bookings_per_user
    async with ctx.autocommit.connect() as connection:
        try:
            inserted = await repository.insert_booking(
                connection, booking, rows, events.booking_created(booking), limit
            )
        except IntegrityError as exc:  # the database guard: Redis lost a hold, or a race we did not see
            ids = [s.seat_id for s in seats]
            taken = await repository.active_seats(connection, showtime.showtime_id, ids)
            raise seats_taken(taken or ids) from exc
    if not inserted:
        raise Conflict(f"At most {limit} unpaid bookings at a time", code="too_many_pending_bookings")
    ctx.outbox_wakeup.notify()
    BOOKINGS.labels(lifecycle.PENDING).inc()
    return booking


def _new_booking(
    user: Principal, showtime: ShowtimeInfo, seats: list[SeatInfo], hold: tuple[str, datetime]
) -> tuple[Booking, list[BookingSeat]]:
    now, (token, expires_at) = datetime.now(UTC), hold
    booking = Booking(
        id=uuid.uuid4(),
        user_id=user.user_id,
        user_email=user.email,
        showtime_id=showtime.showtime_id,
        status=lifecycle.PENDING,
        seats=[s.seat_id for s in seats],
        total_amount=sum(s.price for s in seats),
        currency=showtime.currency,
        hold_token=token,
        expires_at=expires_at,
        movie_title=showtime.movie_title,
        theater_name=showtime.theater_name,
        time_zone=showtime.time_zone,
        auditorium_name=showtime.auditorium_name,
        starts_at=showtime.starts_at,
        theater_id=showtime.theater_id,
        theater_address=showtime.theater_address or None,
        ends_at=showtime.ends_at,
        created_at=now,
        updated_at=now,
    )
    rows = [_seat_row(booking, seat) for seat in seats]
    return booking, rows


def _seat_row(booking: Booking, seat: SeatInfo) -> BookingSeat:
    return BookingSeat(
        booking_id=booking.id,
        seat_id=seat.seat_id,
        showtime_id=booking.showtime_id,
        status=lifecycle.PENDING,
        tier=seat.tier,
        price=seat.price,
    )


async def get_own_booking(session: AsyncSession, user: Principal, booking_id: uuid.UUID) -> Booking:
    """The caller's booking; someone else's is 404, like a missing one."""
    booking = await repository.get_booking(session, booking_id)
    if booking is None or booking.user_id != user.user_id:
        raise NotFound("Booking not found", code="booking_not_found")
    return booking


async def get_booking(session: AsyncSession, booking_id: uuid.UUID) -> Booking:
    booking = await repository.get_booking(session, booking_id)
    if booking is None:
        raise NotFound("Booking not found", code="booking_not_found")
    return booking


async def internal_view(
    session: AsyncSession, settings: BookingSettings, booking_id: uuid.UUID
) -> InternalBookingOut:
    """A booking as payment-service sees it, with the owner's cancellation cut-off and whether a
    ticket of it has been admitted (the owner may not cancel or refund it then)."""
    booking = await get_booking(session, booking_id)
    until = cancellable_until(settings, booking.starts_at)
    admitted = await repository.any_ticket_admitted(session, booking_id)
    view = InternalBookingOut.model_validate(booking)
    return view.model_copy(update={"cancellable_until": until, "admitted": admitted})


async def cancel_own_booking(
    session: AsyncSession, ctx: BookingContext, user: Principal, booking_id: uuid.UUID
) -> Booking:
    """Cancel the caller's booking (idempotent); see lifecycle.cancel_booking."""
    booking = await get_own_booking(session, user, booking_id)
    cutoff = timedelta(minutes=ctx.settings.cancellation_cutoff_minutes)
    return await lifecycle.cancel_booking(session, ctx.holds, booking, cutoff)


async def seat_status(session: AsyncSession, holds: SeatHolds, showtime_id: uuid.UUID) -> SeatStatusOut:
    """Seats not available: booked (confirmed) and held (pending, or a live Redis hold)."""
    rows = await repository.seat_statuses(session, showtime_id)
    booked = {seat for seat, status in rows if status == lifecycle.CONFIRMED}
    held = {seat for seat, status in rows if status == lifecycle.PENDING}
    try:
        held.update(await holds.held_seats(showtime_id))
    except ServiceUnavailable:  # nobody can take a new hold either; the database has the rest
        logger.warning("seat status without Redis holds for showtime %s", showtime_id)
    return SeatStatusOut(
        showtime_id=showtime_id,
        held=sorted(held - booked, key=seat_order),
        booked=sorted(booked, key=seat_order),
    )
