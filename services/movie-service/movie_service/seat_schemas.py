"""Showtime write models, the seat map and the internal showtime look-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from movie_service.schema_rules import PatchBody
from movie_service.schemas import MAX_PRICE, SeatLayout, SeatStatus, Tier


class Prices(BaseModel):
    """Base price per seat tier, integer minor units (VND: đồng)."""

    model_config = ConfigDict(extra="forbid")

    standard: int = Field(ge=0, le=MAX_PRICE)
    vip: int | None = Field(default=None, ge=0, le=MAX_PRICE)
    couple: int | None = Field(default=None, ge=0, le=MAX_PRICE)


SHOWTIME_EXAMPLE: dict[str, Any] = {
    "movie_id": "3f1c1a52-5d7e-4d43-9b0c-0c7f1f7a2b11",
    "auditorium_id": "8a2b4a0e-2f6e-4a55-8f0e-2a1f4b6c9d10",
    "starts_at": "2026-12-24T12:30:00Z",
    "currency": "VND",
    "prices": {"standard": 90000, "vip": 130000, "couple": 220000},
}


class ShowtimeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SHOWTIME_EXAMPLE]})

    movie_id: uuid.UUID
    auditorium_id: uuid.UUID
    starts_at: AwareDatetime = Field(description="With a UTC offset; must be in the future")
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    prices: Prices


class ShowtimeUpdate(PatchBody):
    """Only the fields sent are changed; each may be left out but not null (422)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prices": {"standard": 95000, "vip": 140000}}]}
    )
    not_null = ("starts_at", "currency", "prices")

    starts_at: AwareDatetime | None = Field(
        default=None, description="With a UTC offset; must be in the future"
    )
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    prices: Prices | None = None


class SeatOut(BaseModel):
    seat_id: str = Field(examples=["A1"])
    row: str
    number: int
    tier: Tier
    price: int = Field(description="Integer minor units of the showtime's currency")
    status: SeatStatus


class SeatMap(BaseModel):
    """The seat map (statuses lag booking by at most one second; booking is the authority)."""

    showtime_id: uuid.UUID
    auditorium_id: uuid.UUID
    auditorium_name: str
    starts_at: datetime
    currency: str
    layout: SeatLayout
    seats: list[SeatOut]
    available: int
    held: int
    booked: int


class InternalSeat(BaseModel):
    seat_id: str
    row: str
    number: int
    tier: Tier
    price: int


class InternalShowtime(BaseModel):
    """What booking needs to validate seats and price a booking (docs/contracts.md)."""

    showtime_id: uuid.UUID
    movie_id: uuid.UUID
    movie_title: str
    theater_id: uuid.UUID
    theater_name: str
    theater_address: str
    city: str
    time_zone: str
    auditorium_id: uuid.UUID
    auditorium_name: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    seats: list[InternalSeat]
