"""Events booking-service publishes through its outbox (payloads as docs/contracts.md)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from booking_service.models import Booking, outbox
from servicekit.events import EventEnvelope, add_event, new_event

PRODUCER = "booking-service"
# Why a booking was cancelled. ``payment_after_expiry`` is no longer sent (a late payment is
# refunded by payment-service on its own), but consumers still accept it from older producers.
CancelReason = Literal["user_cancelled", "payment_failed", "refund_requested", "refunded_by_admin"]


@dataclass(frozen=True)
class IssuedTicket:
    code: str
    seat: str


@dataclass(frozen=True)
class Admission:
    """What ``ticket.admitted`` says about an admission."""

    booking_id: uuid.UUID
    user_id: uuid.UUID
    user_email: str
    showtime_id: uuid.UUID
    seat_id: str
    theater_id: uuid.UUID | None
    admitted_at: datetime
    admitted_by: uuid.UUID


def _about(booking: Booking) -> dict[str, Any]:
    return {
        "booking_id": str(booking.id),
        "user_id": str(booking.user_id),
        "user_email": booking.user_email,
        "showtime_id": str(booking.showtime_id),
        "seats": list(booking.seats),
    }


def _money(booking: Booking) -> dict[str, Any]:
    return {"total_amount": booking.total_amount, "currency": booking.currency}


async def _publish(session: AsyncSession, event_type: str, data: dict[str, Any]) -> None:
    await add_event(session, outbox, new_event(event_type, PRODUCER, data))


def booking_created(booking: Booking) -> EventEnvelope:
    """``booking.created``, written by the statement that inserts the booking itself."""
    data = {**_about(booking), **_money(booking), "expires_at": booking.expires_at.isoformat()}
    return new_event("booking.created", PRODUCER, data)


def booking_confirmed_envelope() -> EventEnvelope:
    """``booking.confirmed`` without its data, which the confirm's statement writes from the row
    it confirms (repository.confirm_on_payment_sql; the same data as ``publish_booking_confirmed``)."""
    return new_event("booking.confirmed", PRODUCER, {})


async def publish_booking_confirmed(
    session: AsyncSession, booking: Booking, tickets: Sequence[IssuedTicket]
) -> None:
    """With the tickets just issued (their codes go into the tickets mail's QR codes)."""
    data = {
        **_about(booking),
        "movie_title": booking.movie_title,
        "theater_name": booking.theater_name,
        "theater_address": booking.theater_address,
        "auditorium_name": booking.auditorium_name,
        "starts_at": booking.starts_at.isoformat(),
        "time_zone": booking.time_zone,
        **_money(booking),
        "payment_id": booking.payment_id,
        "tickets": [{"code": t.code, "seat": t.seat} for t in tickets],
    }
    await _publish(session, "booking.confirmed", data)


async def publish_ticket_admitted(session: AsyncSession, admitted: Admission) -> None:
    """A ticket was admitted at the door (no code: it is spent, and events need not carry it)."""
    data = {
        "booking_id": str(admitted.booking_id),
        "user_id": str(admitted.user_id),
        "user_email": admitted.user_email,
        "showtime_id": str(admitted.showtime_id),
        "seat": admitted.seat_id,
        "theater_id": str(admitted.theater_id) if admitted.theater_id else None,
        "admitted_at": admitted.admitted_at.isoformat(),
        "admitted_by": str(admitted.admitted_by),
    }
    await _publish(session, "ticket.admitted", data)


async def publish_booking_cancelled(
    session: AsyncSession,
    booking: Booking,
    reason: CancelReason,
    refund_required: bool,
    payment_id: str | None,
) -> None:
    """``refund_required`` tells payment-service to refund ``payment_id``."""
    data = {
        **_about(booking),
        **_money(booking),
        "reason": reason,
        "refund_required": refund_required,
        "payment_id": payment_id,
    }
    await _publish(session, "booking.cancelled", data)


async def publish_booking_expired(session: AsyncSession, booking: Booking) -> None:
    data = {
        **_about(booking),
        "movie_title": booking.movie_title,
        "starts_at": booking.starts_at.isoformat(),
        "time_zone": booking.time_zone,
    }
    await _publish(session, "booking.expired", data)
