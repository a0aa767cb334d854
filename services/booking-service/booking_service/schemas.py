"""booking-service request and response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

BookingStatus = Literal["pending", "confirmed", "cancelled", "expired", "failed"]
SeatId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,3}[0-9]{1,4}$", max_length=8)]
HARD_MAX_SEATS = 100  # the configurable limit (MAX_SEATS_PER_BOOKING) is checked by the service


class BookRequest(BaseModel):
    """Seats to hold for a showtime: all of them or none."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"showtime_id": "0b8f7a4e-2d0c-4c52-9a4c-3f1e6d2b9a10", "seat_ids": ["A1", "A2"]}]
        },
    )

    showtime_id: uuid.UUID
    seat_ids: list[SeatId] = Field(
        min_length=1,
        max_length=HARD_MAX_SEATS,
        description=(
            "Seat labels of the seat map, each at most once. Labels are case-insensitive "
            '(`a1` is `A1`), so `["A1", "a1"]` is a duplicate too: 422. '
            "The booking limit (10 seats by default) is checked below maxItems: 422 beyond it."
        ),
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("seat_ids")
    @classmethod
    def _no_duplicates(cls, seat_ids: list[str]) -> list[str]:
        upper = [s.upper() for s in seat_ids]
        duplicates = sorted({s for s in upper if upper.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate seats: {', '.join(duplicates)}")
        return upper


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: BookingStatus
    showtime_id: uuid.UUID
    seats: list[str]
    total_amount: int = Field(description="Integer minor units of `currency`")
    currency: str
    expires_at: datetime = Field(description="When an unpaid hold expires")
    movie_title: str
    theater_name: str
    auditorium_name: str
    starts_at: datetime
    payment_id: str | None
    cancel_reason: str | None
    created_at: datetime


class BookingPage(BaseModel):
    items: list[BookingOut]
    total: int
    limit: int
    offset: int


class InternalBookingOut(BaseModel):
    """What payment-service needs: amount, owner, status, and the cancellation cut-off."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    user_email: str
    status: BookingStatus
    showtime_id: uuid.UUID
    seats: list[str]
    total_amount: int
    currency: str
    expires_at: datetime
    starts_at: datetime
    cancellable_until: datetime | None = Field(
        default=None, description="Until when the owner may cancel (and be refunded)"
    )
    admitted: bool = Field(
        default=False, description="A ticket of it has been admitted: the owner may no longer cancel"
    )


class SeatStatusOut(BaseModel):
    showtime_id: uuid.UUID
    held: list[str] = Field(description="A pending booking or a live Redis hold")
    booked: list[str] = Field(description="A confirmed booking")


TicketStatus = Literal["valid", "admitted", "void", "expired"]
# A ticket code as the scanner read it (trimmed); one that is no ticket of ours is a 404.
TicketCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class TicketOut(BaseModel):
    code: str = Field(description="What the QR code holds; staff scan it at the door")
    seat: str
    status: TicketStatus = Field(
        description="`expired`: never admitted and the showtime is over; `void`: the booking ended"
    )
    admitted_at: datetime | None
    qr_url: str = Field(description="The code as an SVG QR code (the gateway's path)")


class CheckinRequest(BaseModel):
    """A scanned ticket, and the theater of the scanner when it names one."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"code": "kGz6a8b0uY1c2d3e4f5g6h"}]}
    )

    code: TicketCode
    theater_id: uuid.UUID | None = Field(
        default=None, description="The scanner's theater: another theater's ticket is 409 `wrong_theater`"
    )


class CheckinOut(BaseModel):
    admitted: Literal[True] = True
    seat: str
    movie_title: str
    starts_at: datetime
    auditorium: str
    theater_name: str
    admitted_at: datetime
