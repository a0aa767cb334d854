"""The booking state machine: every status change of a booking lives here.

    pending ──payment.completed──> confirmed ──user cancel / payment.refunded──> cancelled
       │ ├──hold time passed (sweeper)──> expired
       │ ├──user cancel / payment.refunded──> cancelled
       │ └──payment.failed──> failed

Each move is one guarded SQL update (``WHERE status = <expected>``) and writes
its event to the outbox in the same transaction, so a duplicate, late or
out-of-order event can never move a booking backwards. A payment that arrives
for a booking that is no longer pending asks payment-service for a refund.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service import events, repository
from booking_service.holds import SeatHolds
from booking_service.metrics import BOOKINGS, SEAT_HOLDS
from booking_service.models import Booking
from servicekit.errors import Conflict

logger = logging.getLogger("booking_service.lifecycle")

PENDING, CONFIRMED, CANCELLED, EXPIRED, FAILED = "pending", "confirmed", "cancelled", "expired", "failed"
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, CONFIRMED): "payment.completed",
    (PENDING, EXPIRED): "the hold time passed (expiry sweeper)",
    (PENDING, CANCELLED): "the user cancels, or payment.refunded",
    (PENDING, FAILED): "payment.failed",
    (CONFIRMED, CANCELLED): "the user cancels (refund through events), or payment.refunded",
}


async def _move(
    session: AsyncSession, booking_id: uuid.UUID, expected: str, target: str, **values: object
) -> Booking | None:
    if (expected, target) not in TRANSITIONS:
        raise ValueError(f"no transition {expected} -> {target}")
    moved = await repository.move_booking(session, booking_id, expected, target, **values)
    if moved is not None:
        BOOKINGS.labels(target).inc()
    return moved


async def _free_seats(holds: SeatHolds, booking: Booking) -> None:
    await holds.release(booking.showtime_id, booking.seats, booking.hold_token)


async def confirm_booking(session: AsyncSession, booking_id: uuid.UUID, payment_id: str) -> None:
    """payment.completed: confirm a pending booking; refund a payment for one that is gone."""
    booking = await _move(session, booking_id, PENDING, CONFIRMED, payment_id=payment_id)
    if booking is not None:
        await events.publish_booking_confirmed(session, booking)
        return
    current = await repository.get_booking(session, booking_id)
    if current is None:
        logger.warning("payment.completed for unknown booking %s ignored", booking_id)
    elif current.status == CONFIRMED:
        if current.payment_id != payment_id:
            logger.warning("second payment %s for confirmed booking %s", payment_id, booking_id)
    else:
        await events.publish_booking_cancelled(session, current, "payment_after_expiry", True, payment_id)


async def fail_booking(
    session: AsyncSession, holds: SeatHolds, booking_id: uuid.UUID, payment_id: str
) -> None:
    """payment.failed: a pending booking fails and its seats return (late failures are ignored)."""
    booking = await _move(session, booking_id, PENDING, FAILED, cancel_reason="payment_failed")
    if booking is None:
        return
    await events.publish_booking_cancelled(session, booking, "payment_failed", False, payment_id)
    await _free_seats(holds, booking)


async def record_refund(
    session: AsyncSession, holds: SeatHolds, booking_id: uuid.UUID, payment_id: str
) -> None:
    """payment.refunded: a booking whose payment was refunded is cancelled (no refund asked)."""
    values = {"cancel_reason": "user_cancelled"}
    booking = await _move(session, booking_id, CONFIRMED, CANCELLED, **values)
    booking = booking or await _move(session, booking_id, PENDING, CANCELLED, **values)
    if booking is None:
        return
    await events.publish_booking_cancelled(session, booking, "user_cancelled", False, payment_id)
    await _free_seats(holds, booking)


async def cancel_booking(session: AsyncSession, holds: SeatHolds, booking: Booking) -> Booking:
    """The user cancels: pending seats return at once; a confirmed booking is refunded.
    Idempotent: cancelling a cancelled booking answers it unchanged."""
    values = {"cancel_reason": "user_cancelled"}
    if moved := await _move(session, booking.id, PENDING, CANCELLED, **values):
        return await _user_cancelled(session, holds, moved, refund_required=False)
    if moved := await _move(session, booking.id, CONFIRMED, CANCELLED, **values):
        return await _user_cancelled(session, holds, moved, refund_required=True)
    current = await repository.get_booking(session, booking.id)
    if current is not None and current.status == CANCELLED:
        return current
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
