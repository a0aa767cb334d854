"""booking schema tables.

``booking_seats.status`` mirrors its booking's status (both change in one
statement), so the partial unique index over active rows is the last guard
against double booking and the seat map needs no join. ``tickets`` are issued
when a booking is confirmed, one per seat, and voided by the statement that ends it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import schema_metadata
from servicekit.events import outbox_table, processed_events_table


class Base(DeclarativeBase):
    metadata = schema_metadata("booking")


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)

STATUSES = ("pending", "confirmed", "cancelled", "expired", "failed")
_STATUS_CHECK = "status IN ('pending', 'confirmed', 'cancelled', 'expired', 'failed')"
ACTIVE_WHERE = text("status IN ('pending', 'confirmed')")


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_email: Mapped[str] = mapped_column(String(254), nullable=False)
    showtime_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    seats: Mapped[list[str]] = mapped_column(ARRAY(String(16)), nullable=False)
    total_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    hold_token: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    movie_title: Mapped[str] = mapped_column(String(300), nullable=False)
    theater_name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The theater's IANA zone, so mails show local time (None on bookings made before it was kept).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    auditorium_name: Mapped[str] = mapped_column(String(200), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The showtime's theater, its address and its end: for the door (a scanner names its theater;
    # a ticket expires when the showtime is over) and the tickets mail. None on bookings made
    # before they were kept.
    theater_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    theater_address: Mapped[str | None] = mapped_column(String(300))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payment_id: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_STATUS_CHECK, name="status"),
        CheckConstraint("total_amount >= 0", name="total_amount_not_negative"),
        Index("ix_bookings_user_created", "user_id", "created_at"),
        Index("ix_bookings_pending_expiry", "expires_at", postgresql_where=text("status = 'pending'")),
    )


class BookingSeat(Base):
    __tablename__ = "booking_seats"

    booking_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("booking.bookings.id", ondelete="CASCADE"), primary_key=True
    )
    seat_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    showtime_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    tier: Mapped[str] = mapped_column(String(32), nullable=False)
    price: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        CheckConstraint(_STATUS_CHECK, name="status"),
        # The last guard: one active booking per seat of a showtime, whatever Redis says.
        Index(
            "uq_booking_seats_active_seat",
            "showtime_id",
            "seat_id",
            unique=True,
            postgresql_where=ACTIVE_WHERE,
        ),
    )


TICKET_STATUSES = ("valid", "admitted", "void")


class Ticket(Base):
    """One seat of a confirmed booking, shown at the door as a QR code of ``code``.

    ``valid`` -> ``admitted`` (once, by a guarded update) or ``void`` (its booking ended);
    ``expired`` is never stored: a valid ticket of a showtime that is over reads expired.
    """

    __tablename__ = "tickets"

    # secrets.token_urlsafe(16): 128 random bits, looked up here (SYSTEM_DESIGN 11).
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("booking.bookings.id", ondelete="CASCADE"), nullable=False
    )
    showtime_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    seat_id: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="valid")
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint("status IN ('valid', 'admitted', 'void')", name="status"),
        CheckConstraint(
            "status <> 'admitted' OR (admitted_at IS NOT NULL AND admitted_by IS NOT NULL)",
            name="admission_recorded",
        ),
        # One ticket per seat of a booking; also the index of a booking's tickets.
        UniqueConstraint("booking_id", "seat_id"),
    )
