"""movie schema tables: movies, theaters, auditoriums (with seat layouts), showtimes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import schema_metadata


class Base(DeclarativeBase):
    metadata = schema_metadata("movie")


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )


class Movie(Base):
    __tablename__ = "movies"

    id: Mapped[uuid.UUID] = _uuid_pk()
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    synopsis: Mapped[str] = mapped_column(Text, nullable=False, default="")
    genres: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False, default=list)
    duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    rating: Mapped[str | None] = mapped_column(String(10))
    language: Mapped[str | None] = mapped_column(String(40))
    release_date: Mapped[date | None] = mapped_column(Date)
    poster_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 1 AND 600", name="duration"),
        Index("ix_movies_genres", genres, postgresql_using="gin"),
        Index(
            "ix_movies_title_search",
            func.to_tsvector(text("'simple'"), title),
            postgresql_using="gin",
        ),
        Index("ix_movies_title_sort", func.lower(title), "id"),
        Index("ix_movies_release_sort", release_date, "id"),
    )


class Theater(Base):
    __tablename__ = "theaters"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    city: Mapped[str] = mapped_column(String(80), nullable=False)
    address: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (Index("uq_theaters_city_name", func.lower(city), func.lower(name), unique=True),)


class Auditorium(Base):
    __tablename__ = "auditoriums"

    id: Mapped[uuid.UUID] = _uuid_pk()
    theater_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("movie.theaters.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    # {"rows": [{"label": "A", "seats": 20, "tier": "standard", "aisles_after": [4, 16]}]}
    layout: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    seat_count: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        UniqueConstraint("theater_id", "name"),
        CheckConstraint("seat_count > 0", name="seat_count"),
    )


class Showtime(Base):
    """A screening. ``turnaround_ends_at`` adds the cleaning gap; no two overlap in one auditorium."""

    __tablename__ = "showtimes"

    id: Mapped[uuid.UUID] = _uuid_pk()
    movie_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("movie.movies.id", ondelete="CASCADE"), nullable=False
    )
    auditorium_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("movie.auditoriums.id", ondelete="CASCADE"), nullable=False
    )
    # Denormalised from the auditorium so the theater filter uses one index.
    theater_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("movie.theaters.id", ondelete="CASCADE"), nullable=False
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    turnaround_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    price_standard: Mapped[int] = mapped_column(Integer, nullable=False)
    price_vip: Mapped[int | None] = mapped_column(Integer)
    price_couple: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("starts_at < ends_at AND ends_at <= turnaround_ends_at", name="times"),
        CheckConstraint(
            "price_standard >= 0 AND coalesce(price_vip, 0) >= 0 AND coalesce(price_couple, 0) >= 0",
            name="prices",
        ),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
        Index("ix_showtimes_starts_at", starts_at),
        Index("ix_showtimes_movie_starts", movie_id, starts_at),
        Index("ix_showtimes_theater_starts", theater_id, starts_at),
        Index("ix_showtimes_auditorium_starts", auditorium_id, starts_at),
    )

    def prices(self) -> dict[str, int]:
        """The price of each tier that has one, in minor units."""
        tiers = {"standard": self.price_standard, "vip": self.price_vip, "couple": self.price_couple}
        return {tier: price for tier, price in tiers.items() if price is not None}


class SeedRun(Base):
    """A demo-data set that has been applied (the row makes seeding idempotent across replicas)."""

    __tablename__ = "seed_runs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    applied_at: Mapped[datetime] = _created()
