"""movie-service request and response models (money in integer minor units, times ISO 8601 UTC)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from movie_service.layout import row_label
from movie_service.schema_rules import IsoDate, PatchBody

Tier = Literal["standard", "vip", "couple"]
SeatStatus = Literal["available", "held", "booked"]
MovieSort = Literal["title", "-title", "release_date", "-release_date"]
MAX_PRICE = 1_000_000_000
MAX_SEATS = 20_000


class RowLayout(BaseModel):
    """One row: its label (A.. when omitted), its seat count and tier, and aisle gaps."""

    label: str | None = Field(default=None, pattern=r"^[A-Z]{1,2}$")
    seats: int = Field(ge=1, le=200)
    tier: Tier = "standard"
    aisles_after: list[int] = Field(default_factory=list, max_length=20, description="Gap after seat n")

    @model_validator(mode="after")
    def _aisles_inside_row(self) -> RowLayout:
        if any(not 1 <= n < self.seats for n in self.aisles_after):
            raise ValueError("aisles_after must name seats between 1 and seats-1")
        self.aisles_after = sorted(set(self.aisles_after))
        return self


class SeatLayout(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rows": [
                        {"seats": 12, "aisles_after": [3, 9]},
                        {"seats": 12, "tier": "vip", "aisles_after": [3, 9]},
                        {"label": "K", "seats": 5, "tier": "couple"},
                    ]
                }
            ]
        }
    )

    rows: list[RowLayout] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _labels_unique(self) -> SeatLayout:
        for index, row in enumerate(self.rows):
            row.label = row.label or row_label(index)
        labels = [row.label for row in self.rows]
        if len(set(labels)) != len(labels):
            raise ValueError("row labels must be unique")
        if sum(row.seats for row in self.rows) > MAX_SEATS:
            raise ValueError(f"an auditorium has at most {MAX_SEATS} seats")
        return self

    @property
    def seat_count(self) -> int:
        return sum(row.seats for row in self.rows)


class Page(BaseModel):
    total: int = Field(description="Items matching the filters, over all pages")
    limit: int
    offset: int


# --- movies ---------------------------------------------------------------------------------------


class MovieFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    synopsis: str | None = Field(default=None, max_length=5000)
    genres: list[str] | None = Field(default=None, max_length=10)
    rating: str | None = Field(default=None, max_length=10, examples=["T13"])
    language: str | None = Field(default=None, max_length=40)
    release_date: IsoDate | None = None
    poster_url: HttpUrl | None = None

    @field_validator("genres")
    @classmethod
    def _normalise_genres(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [g.strip().lower() for g in value]
        if any(not g or len(g) > 40 for g in cleaned):
            raise ValueError("each genre is 1-40 characters")
        return list(dict.fromkeys(cleaned))


class MovieCreate(MovieFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "The Last Monsoon",
                    "synopsis": "A ferry captain races a storm down the Mekong.",
                    "genres": ["drama", "adventure"],
                    "duration_minutes": 118,
                    "rating": "T13",
                    "language": "Vietnamese",
                    "release_date": "2026-12-05",
                    "poster_url": "https://img.example.com/posters/last-monsoon.jpg",
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=200)
    duration_minutes: int = Field(ge=1, le=600)


class MovieUpdate(MovieFields, PatchBody):
    """Only the fields sent are changed. `null` clears rating, language, release_date or
    poster_url; title, duration_minutes, genres and synopsis may be left out but not null (422)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "The Last Monsoon (Director's Cut)"}]}
    )
    not_null = ("title", "duration_minutes", "genres", "synopsis")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    duration_minutes: int | None = Field(default=None, ge=1, le=600)


class MovieOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    synopsis: str
    genres: list[str]
    duration_minutes: int
    rating: str | None
    language: str | None
    release_date: date | None
    poster_url: str | None
    created_at: datetime
    updated_at: datetime


class MoviePage(Page):
    items: list[MovieOut]


class ShowtimeOut(BaseModel):
    id: uuid.UUID
    movie_id: uuid.UUID
    movie_title: str
    theater_id: uuid.UUID
    theater_name: str
    city: str
    time_zone: str
    auditorium_id: uuid.UUID
    auditorium_name: str
    starts_at: datetime
    ends_at: datetime
    currency: str
    prices: dict[str, int] = Field(description="Price per seat tier, integer minor units of `currency`")


class MovieDetail(MovieOut):
    showtimes: list[ShowtimeOut] = Field(description="Upcoming showtimes, soonest first")


class ShowtimePage(Page):
    items: list[ShowtimeOut]


# --- theaters and auditoriums ---------------------------------------------------------------------


def _check_time_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown IANA time zone") from exc
    return value


class TheaterCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "MB Cinema Ba Trieu",
                    "city": "Hanoi",
                    "address": "191 Ba Trieu, Hai Ba Trung, Hanoi",
                    "time_zone": "Asia/Ho_Chi_Minh",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=120)
    city: str = Field(min_length=1, max_length=80)
    address: str = Field(default="", max_length=300)
    time_zone: str = Field(max_length=64, description="IANA time zone, e.g. Asia/Ho_Chi_Minh")

    _tz = field_validator("time_zone")(_check_time_zone)


class TheaterUpdate(PatchBody):
    """Only the fields sent are changed; each may be left out but not null (422)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"address": "2 Ly Thai To"}]})
    not_null = ("name", "city", "address", "time_zone")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    city: str | None = Field(default=None, min_length=1, max_length=80)
    address: str | None = Field(default=None, max_length=300)
    time_zone: str | None = Field(default=None, max_length=64, description="IANA time zone")

    _tz = field_validator("time_zone")(_check_time_zone)


class AuditoriumBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    seat_count: int


class AuditoriumOut(AuditoriumBrief):
    theater_id: uuid.UUID
    layout: SeatLayout


class TheaterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    city: str
    address: str
    time_zone: str
    auditoriums: list[AuditoriumBrief]


class TheaterPage(Page):
    items: list[TheaterOut]


class AuditoriumCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    theater_id: uuid.UUID
    name: str = Field(min_length=1, max_length=60, examples=["Hall 1"])
    layout: SeatLayout


class AuditoriumUpdate(PatchBody):
    """Only the fields sent are changed; each may be left out but not null (422)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Hall 1 (IMAX)"}]})
    not_null = ("name", "layout")

    name: str | None = Field(default=None, min_length=1, max_length=60)
    layout: SeatLayout | None = None
