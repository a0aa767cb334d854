"""What booking-service consumes: payment outcomes, into the state machine."""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import lifecycle
from booking_service.holds import SeatHolds
from booking_service.models import processed_events
from servicekit.app import Runtime, runtime_consumer
from servicekit.events import EventEnvelope
from servicekit.events.consumer import EventConsumer, EventHandler

logger = logging.getLogger("booking_service.consumer")
CONSUMER_NAME = "booking-service.events"
ROUTING_KEYS = ["payment.completed", "payment.failed", "payment.refunded"]


class PaymentOutcome(BaseModel):
    """The part of a payment.* event booking needs (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")

    payment_id: str
    booking_id: uuid.UUID
    reason: str | None = None
    # payment.failed: whether this was the last decline payment-service allows for the booking
    # (absent from older producers, whose every decline ended the booking).
    final: bool = True


def payment_event_handler(holds: SeatHolds) -> EventHandler:
    """Apply a payment event to its booking (runs inside the consumer's transaction)."""

    async def handle(session: AsyncSession, event: EventEnvelope) -> None:
        outcome = PaymentOutcome.model_validate(event.data)
        booking_id, payment_id = outcome.booking_id, outcome.payment_id
        if event.event_type == "payment.completed":
            await lifecycle.confirm_booking(session, holds, booking_id, payment_id)
        elif event.event_type == "payment.failed":
            await lifecycle.fail_booking(session, holds, booking_id, payment_id, outcome.final)
        elif event.event_type == "payment.refunded":
            await lifecycle.record_refund(session, holds, booking_id, payment_id, outcome.reason)
        else:
            logger.warning("unexpected event %s ignored", event.event_type)

    return handle


def build_consumers(runtime: Runtime, holds: SeatHolds) -> list[EventConsumer]:
    return [
        runtime_consumer(runtime, CONSUMER_NAME, ROUTING_KEYS, payment_event_handler(holds), processed_events)
    ]
