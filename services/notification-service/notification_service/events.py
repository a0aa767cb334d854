"""Events notification-service consumes: their routing keys and the data it reads from them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CONSUMER_NAME = "notification-service.events"


class EventData(BaseModel):
    """Fields every consumed event about a user carries (contracts.md)."""

    model_config = ConfigDict(extra="ignore")

    user_id: uuid.UUID
    user_email: str = Field(min_length=3, max_length=254)


class UserRegistered(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: uuid.UUID
    email: str = Field(min_length=3, max_length=254)
    username: str
    full_name: str | None = None
    phone_number: str | None = None

    @property
    def user_email(self) -> str:
        return self.email


class IssuedTicket(BaseModel):
    """A ticket of a confirmed booking: the code its QR code carries, for one seat."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(min_length=1, max_length=512)
    seat: str


class BookingConfirmed(EventData):
    booking_id: uuid.UUID
    showtime_id: uuid.UUID | str
    movie_title: str
    theater_name: str
    auditorium_name: str
    starts_at: datetime
    seats: list[str]
    total_amount: int
    currency: str
    payment_id: uuid.UUID | str | None = None
    # The theater's IANA zone, so the mail shows local time (UTC when absent: older events).
    time_zone: str | None = None
    # One per seat; absent in events of bookings confirmed before tickets were issued.
    tickets: list[IssuedTicket] = Field(default_factory=list)
    theater_address: str | None = None


class BookingCancelled(EventData):
    booking_id: uuid.UUID
    seats: list[str]
    total_amount: int
    currency: str
    reason: str
    refund_required: bool = False
    payment_id: uuid.UUID | str | None = None


class BookingExpired(EventData):
    booking_id: uuid.UUID
    seats: list[str]
    movie_title: str | None = None
    starts_at: datetime | None = None
    time_zone: str | None = None


class PaymentCompleted(EventData):
    payment_id: uuid.UUID | str
    booking_id: uuid.UUID
    amount: int
    currency: str


class PaymentOutcome(EventData):
    """``payment.failed`` and ``payment.refunded``."""

    payment_id: uuid.UUID | str
    booking_id: uuid.UUID
    amount: int
    currency: str
    reason: str | None = None
    # payment.failed: attempts the booking still allows, and whether this decline ended it.
    attempts_left: int | None = None
    final: bool | None = None


UserEvent = UserRegistered | EventData

EVENT_MODELS: dict[str, type[UserRegistered] | type[EventData]] = {
    "user.registered": UserRegistered,
    "booking.confirmed": BookingConfirmed,
    "booking.cancelled": BookingCancelled,
    "booking.expired": BookingExpired,
    "payment.completed": PaymentCompleted,
    "payment.failed": PaymentOutcome,
    "payment.refunded": PaymentOutcome,
}
# payment.completed is not subscribed to: the tickets mail of booking.confirmed tells it (an
# extra delivery and transaction per purchase for nothing). Its model stays, for a queue that
# still carries an old binding.
ROUTING_KEYS = [event_type for event_type in EVENT_MODELS if event_type != "payment.completed"]


def parse_event_data(event_type: str, data: dict[str, object]) -> UserEvent:
    """The typed data of a consumed event (ValidationError when it breaks the contract)."""
    return EVENT_MODELS[event_type].model_validate(data)
