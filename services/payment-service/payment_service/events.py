"""Events payment-service publishes (through its outbox); payloads as in docs/contracts.md."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.models import Payment, outbox
from servicekit.events import EventEnvelope, add_event, new_event

PRODUCER = "payment-service"


def _common(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": str(payment.id),
        "booking_id": str(payment.booking_id),
        "user_id": str(payment.user_id),
        "user_email": payment.user_email,
        "amount": payment.amount,
        "currency": payment.currency,
    }


def payment_completed(payment: Payment) -> EventEnvelope:
    data = {**_common(payment), "payment_method": payment.payment_method, "card_last4": payment.card_last4}
    return new_event("payment.completed", PRODUCER, data)


async def publish_payment_completed(session: AsyncSession, payment: Payment) -> None:
    await add_event(session, outbox, payment_completed(payment))


async def publish_payment_failed(
    session: AsyncSession, payment: Payment, reason: str, attempts_left: int
) -> None:
    """A declined card; ``final`` when it was the booking's last allowed attempt (booking ends it)."""
    data = {**_common(payment), "reason": reason, "attempts_left": attempts_left, "final": attempts_left == 0}
    await add_event(session, outbox, new_event("payment.failed", PRODUCER, data))


async def publish_payment_refunded(session: AsyncSession, payment: Payment, reason: str) -> None:
    data = {**_common(payment), "reason": reason}
    await add_event(session, outbox, new_event("payment.refunded", PRODUCER, data))
