"""The booking state machine: every status change of a booking lives here.

    pending ──payment.completed (hold still live)──> confirmed
       │                                               └──user cancel (until the cut-off)
       │                                                  / payment.refunded──> cancelled
       │ ├──hold time passed (sweeper, or a payment that lands too late)──> expired
       │ ├──user cancel / payment.refunded──> cancelled
       │ └──payment.failed, the last decline allowed──> failed

Each move is one guarded SQL update (``WHERE status = <expected>``, plus the hold
or cut-off condition; a booking that ends voids its valid tickets in the same statement)
and writes its event to the outbox in the same transaction,
so a duplicate, late or out-of-order event can never move a booking backwards.

A booking ends once, with one event. A payment that lands on a booking that is no
longer payable (cancelled, expired or failed meanwhile) is refunded by
payment-service, which hears of every such end through ``booking.cancelled`` and
``booking.expired``; booking says nothing more about it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import events, repository, tickets
from booking_service.holds import SeatHolds
from booking_service.metrics import BOOKINGS, SEAT_HOLDS
from booking_service.models import Booking
from servicekit.errors import Conflict

logger = logging.getLogger("booking_service.lifecycle")

PENDING, CONFIRMED, CANCELLED, EXPIRED, FAILED = "pending", "confirmed", "cancelled", "expired", "failed"
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, CONFIRMED): "payment.completed while the hold is live",
    (PENDING, EXPIRED): "the hold time passed (expiry sweeper, or a payment that lands too late)",
    (PENDING, CANCELLED): "the user cancels, or payment.refunded",
    (PENDING, FAILED): "payment.failed that was the last decline allowed",
    (CONFIRMED, CANCELLED): "the user cancels before the cut-off and any admission (refunded), "
    "or payment.refunded; its valid tickets void",
}


async def _move(
    session: AsyncSession,
    booking_id: uuid.UUID,
    expected: str,
    target: str,
    *,
    only_if: ColumnElement[bool] | None = None,
    payment_id: str | None = None,
    cancel_reason: str | None = None,
) -> Booking | None:
    if (expected, target) not in TRANSITIONS:
        raise ValueError(f"no transition {expected} -> {target}")
    values = {"payment_id": payment_id, "cancel_reason": cancel_reason}
    values = {name: value for name, value in values.items() if value is not None}
    moved = await repository.move_booking(session, booking_id, expected, target, only_if, **values)
    if moved is not None:
        BOOKINGS.labels(target).inc()
    return moved


async def _free_seats(holds: SeatHolds, booking: Booking) -> None:
    await holds.release(booking.showtime_id, booking.seats, booking.hold_token)


async def confirm_booking(
    session: AsyncSession, holds: SeatHolds, booking_id: uuid.UUID, payment_id: str
) -> None:
    """payment.completed: confirm a pending booking whose hold is still live.

    A payment that lands after the hold lapsed expires the booking instead (the sweeper
    had not got to it yet); one that lands on a booking that already ended changes nothing.
    Either way payment-service refunds it when it hears of the end."""
    booking = await repository.confirm_booking(session, booking_id, payment_id)
    if booking is not None:
        BOOKINGS.labels(CONFIRMED).inc()
        issued = await tickets.issue_tickets(session, booking)
        await events.publish_booking_confirmed(session, booking, issued)
        return
    current = await repository.get_booking(session, booking_id)
    if current is None:
        logger.warning("payment.completed for unknown booking %s ignored", booking_id)
    elif current.status == PENDING:
        await _expire(session, holds, current)
    elif current.status == CONFIRMED and current.payment_id != payment_id:
        logger.warning("second payment %s for confirmed booking %s", payment_id, booking_id)
    elif current.status != CONFIRMED:
        logger.info("payment %s landed on %s booking %s", payment_id, current.status, booking_id)


async def _expire(session: AsyncSession, holds: SeatHolds, booking: Booking) -> None:
    expired = await _move(session, booking.id, PENDING, EXPIRED)
    if expired is not None:
        await events.publish_booking_expired(session, expired)
        SEAT_HOLDS.labels("expired").inc()
        await _free_seats(holds, expired)


async def fail_booking(
    session: AsyncSession, holds: SeatHolds, booking_id: uuid.UUID, payment_id: str, final: bool
) -> None:
    """payment.failed: the last decline payment allows fails a pending booking and frees its
    seats; an earlier one leaves it payable (late failures are ignored)."""
    if not final:
        return
    booking = await _move(session, booking_id, PENDING, FAILED, cancel_reason="payment_failed")
    if booking is None:
        return
    await events.publish_booking_cancelled(session, booking, "payment_failed", False, payment_id)
    await _free_seats(holds, booking)


# A refund made at payment-service (not asked for by booking) names why the booking ends.
CANCEL_REASON_OF_REFUND: dict[str, events.CancelReason] = {"requested_by_admin": "refunded_by_admin"}


async def record_refund(
    session: AsyncSession, holds: SeatHolds, booking_id: uuid.UUID, payment_id: str, reason: str | None
) -> None:
    """payment.refunded: a booking whose payment was refunded is cancelled (no refund asked).
    A refund booking asked for itself finds the booking cancelled already: nothing moves."""
    cancel_reason = CANCEL_REASON_OF_REFUND.get(reason or "", "refund_requested")
    booking = await _move(session, booking_id, CONFIRMED, CANCELLED, cancel_reason=cancel_reason)
    booking = booking or await _move(session, booking_id, PENDING, CANCELLED, cancel_reason=cancel_reason)
    if booking is None:
        return
    await events.publish_booking_cancelled(session, booking, cancel_reason, False, payment_id)
    await _free_seats(holds, booking)


async def cancel_booking(
    session: AsyncSession, holds: SeatHolds, booking: Booking, cutoff: timedelta
) -> Booking:
    """The user cancels: pending seats return at once; a confirmed booking is refunded if the
    showtime starts more than ``cutoff`` from now (409 ``cancellation_closed`` after that) and
    none of its tickets has been admitted (409 ``tickets_admitted``), its tickets void.
    Idempotent: cancelling a cancelled booking answers it unchanged."""
    reason = "user_cancelled"
    if moved := await _move(session, booking.id, PENDING, CANCELLED, cancel_reason=reason):
        return await _user_cancelled(session, holds, moved, refund_required=False)
    in_time = repository.starts_after(cutoff) & repository.no_ticket_admitted()
    if moved := await _move(session, booking.id, CONFIRMED, CANCELLED, only_if=in_time, cancel_reason=reason):
        return await _user_cancelled(session, holds, moved, refund_required=True)
    current = await repository.get_booking(session, booking.id)
    if current is not None and current.status == CANCELLED:
        return current
    if current is not None and current.status == CONFIRMED:
        if await repository.any_ticket_admitted(session, booking.id):
            raise Conflict("A ticket of this booking has been admitted", code="tickets_admitted")
        minutes = int(cutoff.total_seconds() // 60)
        message = f"Bookings can be cancelled until {minutes} minutes before the showtime starts"
        raise Conflict(message, code="cancellation_closed")
    status = current.status if current else "gone"
    raise Conflict(f"A booking that is {status} cannot be cancelled", code="booking_not_cancellable")


async def _user_cancelled(
    session: AsyncSession, holds: SeatHolds, booking: Booking, refund_required: bool
) -> Booking:
    payment_id = booking.payment_id if refund_required else None
    await events.publish_booking_cancelled(session, booking, "user_cancelled", refund_required, payment_id)
    await _free_seats(holds, booking)
    return booking


async def expire_stale_holds(
    sessionmaker: async_sessionmaker[AsyncSession], holds: SeatHolds, batch_size: int
) -> int:
    """Expire one batch of unpaid holds (safe with several replicas); returns how many."""
    async with sessionmaker() as session, session.begin():
        expired = await repository.expire_due_bookings(session, batch_size)
        for booking in expired:
            await events.publish_booking_expired(session, booking)
    for booking in expired:
        BOOKINGS.labels(EXPIRED).inc()
        SEAT_HOLDS.labels("expired").inc()
        await _free_seats(holds, booking)
    return len(expired)
