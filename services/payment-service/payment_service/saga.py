"""payment-service's part of the booking saga: the ``payment-service.events`` consumer."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.bookings import record_created_booking
from payment_service.models import processed_events
from payment_service.refunds import refund_cancelled_booking
from payment_service.schemas import BookingCancelled, BookingCreated
from payment_service.service import PAYING
from servicekit.app import Runtime, runtime_consumer
from servicekit.events.consumer import EventConsumer, EventHandler
from servicekit.events.envelope import EventEnvelope

CONSUMER_NAME = "payment-service.events"
ROUTING_KEYS = ["booking.created", "booking.cancelled", "booking.expired"]


def booking_events_handler(runtime: Runtime) -> EventHandler:
    """Keep a new booking, so paying it needs no call to booking-service; refund the payment of
    a booking that was cancelled or expired (inside the consumer's transaction); a payment that
    lands on it later is refunded when it succeeds."""

    async def handle(session: AsyncSession, event: EventEnvelope) -> None:
        if event.event_type == "booking.created":
            await record_created_booking(session, BookingCreated.model_validate(event.data))
            return
        if event.event_type == "booking.cancelled":
            ended = BookingCancelled.model_validate(event.data)
        elif event.event_type == "booking.expired":
            ended = BookingCancelled.model_validate({**event.data, "reason": "expired"})
        else:
            return
        await refund_cancelled_booking(session, runtime[PAYING].provider, ended)

    return handle


def consumers(runtime: Runtime) -> list[EventConsumer]:
    handler = booking_events_handler(runtime)
    return [runtime_consumer(runtime, CONSUMER_NAME, ROUTING_KEYS, handler, processed_events)]
