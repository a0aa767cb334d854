"""booking-service, as payment-service sees it: the bookings ``booking.created`` announced
(kept in ``payable_bookings``), and ``GET /internal/bookings/{id}`` for the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from payment_service.models import CancelledBooking, PayableBooking
from payment_service.schemas import BookingView
from servicekit.errors import BadGateway, Conflict, NotFound, Unprocessable
from servicekit.http import ServiceClient


class BookingGateway:
    """Reads bookings through the shared client (timeouts, circuit breaker: 503 when down)."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def payable_booking(
        self, booking_id: uuid.UUID, user_id: uuid.UUID, amount: int | None
    ) -> BookingView:
        """The caller's pending, unexpired booking; 404 / 409 / 422 (amount differs) / 503."""
        return check_payable(await self._fetch(booking_id), user_id, amount)

    async def check_cancellable(self, booking_id: uuid.UUID) -> None:
        """409 ``cancellation_closed`` past the booking's cancellation cut-off, ``tickets_admitted``
        once a ticket of it was admitted at the door (booking's rules)."""
        booking = await self._fetch(booking_id)
        if booking is not None and booking.admitted:
            raise Conflict(
                "A ticket of this booking has been admitted; the cinema can still refund",
                code="tickets_admitted",
            )
        until = booking.cancellable_until if booking is not None else None
        if until is not None and until <= datetime.now(UTC):
            raise Conflict(
                "Cancellations and refunds closed before the showtime; the cinema can still refund",
                code="cancellation_closed",
            )

    async def _fetch(self, booking_id: uuid.UUID) -> BookingView | None:
        response = await self._client.request("GET", f"/internal/bookings/{booking_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BadGateway(f"booking-service answered {response.status_code}", code="booking_service_error")
        try:
            return BookingView.model_validate_json(response.content)
        except ValidationError as exc:
            raise BadGateway(
                "booking-service answered an unexpected body", code="booking_service_error"
            ) from exc


# A booking that ended, by the reason its end was recorded with (only the message says it).
_STATUS_OF_END = {"expired": "expired", "payment_after_expiry": "expired", "payment_failed": "failed"}


def known_booking_view(booking: PayableBooking, ended: CancelledBooking | None) -> BookingView:
    """The booking as ``booking.created`` announced it: pending until its end is recorded.

    A paid (confirmed) one still reads pending here: its live payment answers for it.
    """
    status = "pending" if ended is None else _STATUS_OF_END.get(ended.reason, "cancelled")
    return BookingView(
        id=booking.booking_id,
        user_id=booking.user_id,
        user_email=booking.user_email,
        status=status,
        total_amount=booking.amount,
        currency=booking.currency,
        expires_at=booking.expires_at,
    )


def check_payable(booking: BookingView | None, user_id: uuid.UUID, amount: int | None) -> BookingView:
    """The caller's pending, unexpired booking of that amount; 404 / 409 / 422 otherwise."""
    if booking is None or booking.user_id != user_id:
        raise NotFound("Booking not found", code="booking_not_found")
    if booking.status != "pending":
        raise Conflict(f"The booking is {booking.status}, not pending", code="booking_not_pending")
    if booking.expires_at is not None and booking.expires_at <= datetime.now(UTC):
        raise Conflict("The booking's seat hold has expired", code="booking_expired")
    if amount is not None and amount != booking.total_amount:
        raise Unprocessable(
            f"amount {amount} does not match the booking's total {booking.total_amount}",
            code="amount_mismatch",
        )
    return booking
