"""payment-service request and response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from payment_service.cards import normalize_card_number

# Amounts are stored as PostgreSQL integers (minor units): a larger one matches no booking.
AMOUNT_MAX = 2**31 - 1

PaymentMethod = Literal["credit_card", "debit_card", "e_wallet"]


class PaymentRequest(BaseModel):
    """Pay a pending booking. The amount comes from the booking; a sent ``amount`` must equal it."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "booking_id": "6f1c1d2e-8a43-4b8e-9a1e-2b0c4c1f7a10",
                    "payment_method": "credit_card",
                    "card_number": "4242424242424242",
                }
            ]
        },
    )

    booking_id: uuid.UUID
    payment_method: PaymentMethod
    card_number: str | None = Field(
        default=None, repr=False, description="A test card number (see README); none means success"
    )
    amount: int | None = Field(
        default=None,
        ge=0,
        le=AMOUNT_MAX,
        description="Optional; must equal the booking's (integer minor units, as stored: at most 2^31 - 1)",
    )

    @field_validator("card_number")
    @classmethod
    def _valid_card(cls, value: str | None) -> str | None:
        return normalize_card_number(value) if value is not None else None


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    booking_id: uuid.UUID
    user_id: uuid.UUID
    amount: int = Field(description="Integer minor units")
    currency: str
    status: Literal["pending", "succeeded", "failed", "refunded"]
    payment_method: str
    card_brand: str | None
    card_last4: str | None
    failure_reason: str | None
    refund_reason: str | None
    refunded_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    total: int
    limit: int
    offset: int


class BookingView(BaseModel):
    """booking-service's ``GET /internal/bookings/{id}`` answer (docs/contracts.md)."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    user_id: uuid.UUID
    user_email: str | None = None
    status: str
    showtime_id: uuid.UUID | None = None
    seats: list[str] = Field(default_factory=list)
    total_amount: int
    currency: str
    expires_at: datetime | None = None
    starts_at: datetime | None = None
    cancellable_until: datetime | None = None
    # A ticket of it was admitted at the door (absent from older booking-services: false).
    admitted: bool = False


class BookingCreated(BaseModel):
    """The ``data`` of a ``booking.created`` event: what paying the booking needs to know."""

    model_config = ConfigDict(extra="ignore")

    booking_id: uuid.UUID
    user_id: uuid.UUID
    user_email: str | None = Field(default=None, max_length=254)
    total_amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    expires_at: datetime


class BookingCancelled(BaseModel):
    """The ``data`` of a ``booking.cancelled`` event (``booking.expired`` is read as one with
    reason ``expired``): a booking that ended unpaid or was cancelled."""

    model_config = ConfigDict(extra="ignore")

    booking_id: uuid.UUID
    user_id: uuid.UUID | None = None
    reason: str = Field(default="cancelled", max_length=40)
    refund_required: bool = False
    payment_id: str | None = Field(default=None, max_length=64)
