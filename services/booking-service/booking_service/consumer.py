"""What booking-service consumes: payment outcomes, into the state machine."""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import events, lifecycle, repository, tickets
from booking_service.holds import SeatHolds
from booking_service.metrics import BOOKINGS
from booking_service.models import processed_events
from servicekit.app import Runtime, runtime_consumer
from servicekit.events import EventEnvelope, outbox_args
from servicekit.events.consumer import EventConsumer, EventHandler, OneStatement, StatementHandler

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


def confirm_statement(seats_at_most: int) -> StatementHandler:
    """payment.completed on a pending booking with a live hold, the purchase's usual case, as
    one statement in autocommit (repository.confirm_on_payment_sql): the confirm, its tickets,
    ``booking.confirmed`` and the dedupe record. Every other case (the hold lapsed, the booking
    ended or is unknown, a redelivery) writes nothing there and goes to ``lifecycle.confirm_booking``
    in the consumer's transaction, as before."""
    sql = repository.confirm_on_payment_sql(processed_events)
    confirmed = BOOKINGS.labels(lifecycle.CONFIRMED).inc

    def statement(event: EventEnvelope) -> OneStatement | None:
        if event.event_type != "payment.completed":
            return None
        outcome = PaymentOutcome.model_validate(event.data)
        codes = [tickets.new_ticket_code() for _ in range(seats_at_most)]  # the seats use the first
        announced = outbox_args(events.booking_confirmed_envelope())
        args = (outcome.booking_id, outcome.payment_id, codes, *announced)
        return OneStatement(sql, args, writes_outbox=True, on_claimed=confirmed)

    return statement


def build_consumers(runtime: Runtime, holds: SeatHolds, seats_at_most: int) -> list[EventConsumer]:
    handler, statement = payment_event_handler(holds), confirm_statement(seats_at_most)
    return [
        runtime_consumer(runtime, CONSUMER_NAME, ROUTING_KEYS, handler, processed_events, statement=statement)
    ]
