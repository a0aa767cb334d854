"""payment schema tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import schema_metadata
from servicekit.events import outbox_table, processed_events_table


class Base(DeclarativeBase):
    metadata = schema_metadata("payment")


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


# Failed payments that were not the card's answer: they never count as declines.
NOT_A_DECLINE = ("provider_unavailable", "abandoned")


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Payment(Base):
    """One attempt to pay one booking. At most one pending or succeeded payment per booking."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_email: Mapped[str] = mapped_column(String(254), nullable=False)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PaymentStatus.PENDING)
    payment_method: Mapped[str] = mapped_column(String(20), nullable=False)
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    idempotency_key: Mapped[str] = mapped_column(String(255), nullable=False)
    provider: Mapped[str] = mapped_column(String(30), nullable=False)
    provider_charge_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    refund_reason: Mapped[str | None] = mapped_column(String(64))
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        # The last guard of invariant 2: a booking is never charged twice, whatever the keys.
        Index(
            "uq_payments_booking_active",
            "booking_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'succeeded')"),
        ),
        Index("ix_payments_user_created", "user_id", "created_at"),
        # The reconciler's scan: pending payments by how long they have been left alone.
        Index("ix_payments_pending_updated", "updated_at", postgresql_where=text("status = 'pending'")),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'refunded')", name="status"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )


class IdempotencyRecord(Base):
    """The guard of one ``Idempotency-Key`` of one user, and the answer to replay."""

    __tablename__ = "idempotency_records"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    locked_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)

    __table_args__ = (CheckConstraint("state IN ('in_flight', 'completed')", name="state"),)


class CancelledBooking(Base):
    """Bookings booking-service reported cancelled: a charge for one is refunded at once."""

    __tablename__ = "cancelled_bookings"

    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), nullable=False)
    refund_required: Mapped[bool] = mapped_column(Boolean, nullable=False)
    received_at: Mapped[datetime] = _created()


class PayableBooking(Base):
    """Bookings as ``booking.created`` announced them: a booking known here is paid without asking
    booking-service. Whether it is still pending is told by ``cancelled_bookings`` (its end) and
    ``payments`` (a live payment of it)."""

    __tablename__ = "payable_bookings"

    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_email: Mapped[str | None] = mapped_column(String(254))
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The end of the seat hold; booking never moves it. Rows go a day after it (housekeeping).
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    received_at: Mapped[datetime] = _created()


class ProviderLedgerEntry(Base):
    """The simulated provider's own record of charges, refunds and voids, one per idempotency key.

    It stands in for the acquirer's side: a real provider keeps this on its servers.
    """

    __tablename__ = "simulated_provider_ledger"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(10), nullable=False)
    operation_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    reference: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False)
    decline_code: Mapped[str | None] = mapped_column(String(40))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("operation IN ('charge', 'refund', 'void')", name="operation"),)
