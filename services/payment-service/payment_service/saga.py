"""payment-service's part of the booking saga: the ``payment-service.events`` consumer."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service import repository
from payment_service.models import processed_events
from payment_service.refunds import refund_cancelled_booking
from payment_service.schemas import BookingCancelled, BookingCreated
from payment_service.service import PAYING
from servicekit.app import Runtime, runtime_consumer
from servicekit.events.consumer import EventConsumer, EventHandler, OneStatement, StatementHandler, claim_sql
from servicekit.events.envelope import EventEnvelope

CONSUMER_NAME = "payment-service.events"
ROUTING_KEYS = ["booking.created", "booking.cancelled", "booking.expired"]


def booking_events_handler(runtime: Runtime) -> EventHandler:
    """Refund the payment of a booking that was cancelled or expired (inside the consumer's
    transaction); a payment that lands on it later is refunded when it succeeds.
    ``booking.created`` never gets here: it is one statement (``created_booking_statement``),
    and a copy of it that statement did not claim is a duplicate, skipped by the dedupe record."""

    async def handle(session: AsyncSession, event: EventEnvelope) -> None:
        if event.event_type == "booking.cancelled":
            ended = BookingCancelled.model_validate(event.data)
        elif event.event_type == "booking.expired":
            ended = BookingCancelled.model_validate({**event.data, "reason": "expired"})
        else:
            return
        await refund_cancelled_booking(session, runtime[PAYING].provider, ended)

    return handle


def created_booking_statement(processed: Table) -> StatementHandler:
    """``booking.created`` as one statement in autocommit: the dedupe record and the payable
    booking together, so paying it needs no call to booking-service; the other events are
    transactional."""
    sql = repository.record_payable_booking_with_claim_sql(claim_sql(processed))

    def statement(event: EventEnvelope) -> OneStatement | None:
        if event.event_type != "booking.created":
            return None
        b = BookingCreated.model_validate(event.data)
        return OneStatement(
            sql, (b.booking_id, b.user_id, b.user_email, b.total_amount, b.currency, b.expires_at)
        )

    return statement


def consumers(runtime: Runtime) -> list[EventConsumer]:
    handler = booking_events_handler(runtime)
    statement = created_booking_statement(processed_events)
    return [
        runtime_consumer(runtime, CONSUMER_NAME, ROUTING_KEYS, handler, processed_events, statement=statement)
    ]
