"""Refunds: full, once per payment, from the owner, an admin, or a booking that ended."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import repository
from payment_service.bookings import BookingGateway
from payment_service.config import PaymentSettings
from payment_service.events import publish_payment_refunded
from payment_service.leases import pending_payment_retry_after
from payment_service.metrics import REFUNDS
from payment_service.models import Payment, PaymentStatus
from payment_service.providers import PaymentProvider, ProviderUnavailable, RefundRequest
from payment_service.schemas import BookingCancelled
from servicekit.errors import Conflict, NotFound, ServiceUnavailable
from servicekit.security import Principal

logger = logging.getLogger("payment_service.refunds")


async def refund_payment(
    session: AsyncSession, provider: PaymentProvider, payment: Payment, reason: str
) -> bool:
    """Refund a succeeded payment (locked by the caller) in full; False when it already is."""
    if payment.status == PaymentStatus.REFUNDED:
        return False
    if payment.status != PaymentStatus.SUCCEEDED or payment.provider_charge_id is None:
        raise Conflict(f"A {payment.status} payment cannot be refunded", code="payment_not_refundable")
    await provider.refund(
        RefundRequest(f"refund:{payment.id}", payment.provider_charge_id, payment.amount, payment.currency)
    )
    now = datetime.now(UTC)
    payment.status, payment.refund_reason = PaymentStatus.REFUNDED, reason
    payment.refunded_at = payment.updated_at = now
    await publish_payment_refunded(session, payment, reason)
    REFUNDS.inc()
    logger.info("payment %s refunded (%s)", payment.id, reason)
    return True


async def request_refund(
    session: AsyncSession,
    provider: PaymentProvider,
    bookings: BookingGateway,
    user: Principal,
    payment_id: uuid.UUID,
    settings: PaymentSettings,
) -> Payment:
    """``POST /payments/{id}/refund``: the owner until the booking's cancellation cut-off, an
    admin at any time; idempotent."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None or (payment.user_id != user.user_id and not user.is_admin):
        raise NotFound("Payment not found", code="payment_not_found")
    if payment.status == PaymentStatus.PENDING:  # refundable once it succeeds: worth a retry
        raise Conflict(
            "A pending payment cannot be refunded yet",
            code="payment_not_refundable",
            headers=pending_payment_retry_after(payment.updated_at, settings),
        )
    reason = "requested_by_customer" if payment.user_id == user.user_id else "requested_by_admin"
    if reason == "requested_by_customer" and payment.status == PaymentStatus.SUCCEEDED:
        await bookings.check_cancellable(payment.booking_id)
    locked = await repository.get_payment(session, payment_id, lock=True)
    assert locked is not None
    try:
        await refund_payment(session, provider, locked, reason)
    except ProviderUnavailable as exc:
        raise ServiceUnavailable(
            "The payment provider is unavailable; retry", code="provider_unavailable"
        ) from exc
    return locked


# Why a payment that landed on a booking that had ended meanwhile was refunded.
LATE_PAYMENT_REFUND_REASONS = {
    "expired": "paid_after_expiry",
    "payment_after_expiry": "paid_after_expiry",  # from booking-services that still send it
    "payment_failed": "paid_after_failure",
}


def late_payment_refund_reason(booking_end: str) -> str:
    """The refund reason of a payment that succeeded after its booking ended for ``booking_end``."""
    return LATE_PAYMENT_REFUND_REASONS.get(booking_end, "paid_after_cancellation")


def cancellation_refund_reason(ended: BookingCancelled) -> str:
    """A confirmed booking the customer cancelled, or a payment that landed too late."""
    if ended.refund_required and ended.reason == "user_cancelled":
        return "user_cancelled"
    return late_payment_refund_reason(ended.reason)


async def refund_cancelled_booking(
    session: AsyncSession, provider: PaymentProvider, ended: BookingCancelled
) -> None:
    """``booking.cancelled`` / ``booking.expired``: a booking that ended keeps no charge.

    The end is remembered, so a payment still being charged when it arrives is
    refunded as soon as it succeeds (see ``service.finish_payment``).
    """
    await repository.lock_booking(session, ended.booking_id)
    await repository.record_cancelled_booking(session, ended.booking_id, ended.reason, ended.refund_required)
    payment = await _payment_to_refund(session, ended)
    if payment is not None and payment.status == PaymentStatus.SUCCEEDED:
        await refund_payment(session, provider, payment, cancellation_refund_reason(ended))


async def _payment_to_refund(session: AsyncSession, cancelled: BookingCancelled) -> Payment | None:
    named = _as_uuid(cancelled.payment_id)
    if named is None:
        return await repository.succeeded_payment_of_booking(session, cancelled.booking_id)
    payment = await repository.get_payment(session, named, lock=True)
    if payment is None or payment.booking_id != cancelled.booking_id:
        logger.warning("booking.cancelled names unknown payment %s", cancelled.payment_id)
        return None
    return payment


def _as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
