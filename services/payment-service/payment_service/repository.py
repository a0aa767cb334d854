"""Every SQL statement of payment-service (and of its simulated provider's ledger)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Select, Table, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from payment_service.models import (
    NOT_A_DECLINE,
    CancelledBooking,
    IdempotencyRecord,
    PayableBooking,
    Payment,
    PaymentStatus,
    ProviderLedgerEntry,
)
from servicekit.housekeeping import Retention, older_than

# A payable booking is kept this long after its hold's end: a late retry is still answered here.
PAYABLE_BOOKING_KEPT_AFTER_EXPIRY = timedelta(days=1)

# --- payments ---------------------------------------------------------------------------


async def add_payment(session: AsyncSession, payment: Payment) -> Payment:
    """Insert; raises IntegrityError when the booking already has a pending or succeeded payment."""
    session.add(payment)
    await session.flush()
    return payment


async def get_payment(session: AsyncSession, payment_id: uuid.UUID, *, lock: bool = False) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalars().first()


async def succeeded_payment_of_booking(session: AsyncSession, booking_id: uuid.UUID) -> Payment | None:
    """The booking's succeeded payment (at most one, by the partial unique index), locked."""
    stmt = (
        select(Payment)
        .where(Payment.booking_id == booking_id, Payment.status == PaymentStatus.SUCCEEDED)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().first()


def _declines(booking_id: uuid.UUID) -> Select[int]:
    return select(func.count()).where(
        Payment.booking_id == booking_id,
        Payment.status == PaymentStatus.FAILED,
        Payment.failure_reason.not_in(NOT_A_DECLINE),
    )


async def count_declines(session: AsyncSession, booking_id: uuid.UUID) -> int:
    """How many of the booking's payments the card declined (provider trouble does not count)."""
    return int(await session.scalar(_declines(booking_id)) or 0)


async def live_payment_of_booking(session: AsyncSession, booking_id: uuid.UUID) -> Payment | None:
    """The booking's pending or succeeded payment (at most one, by the partial unique index)."""
    stmt = select(Payment).where(
        Payment.booking_id == booking_id,
        Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.SUCCEEDED]),
    )
    return (await session.execute(stmt)).scalars().first()


async def claim_stale_payments(session: AsyncSession, lease_seconds: float, limit: int) -> list[Payment]:
    """Payments pending and untouched for longer than the lease, touched now so that no other
    replica takes them for another lease (rows another transaction holds are skipped)."""
    stale = (
        select(Payment.id)
        .where(
            Payment.status == PaymentStatus.PENDING,
            Payment.updated_at < func.now() - timedelta(seconds=lease_seconds),
        )
        .order_by(Payment.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("stale")
    )
    stmt = (
        update(Payment)
        .where(Payment.id.in_(select(stale.c.id)), Payment.status == PaymentStatus.PENDING)
        .values(updated_at=func.now())
        .returning(Payment)
        .execution_options(synchronize_session=False)
    )
    return list((await session.scalars(stmt)).all())


async def list_payments(
    session: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[Payment], int]:
    """A user's payments, newest first, and how many there are in all."""
    stmt = (
        select(Payment)
        .where(Payment.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id)
        .limit(limit)
        .offset(offset)
    )
    items = list((await session.execute(stmt)).scalars())
    total = await session.scalar(select(func.count()).where(Payment.user_id == user_id))
    return items, int(total or 0)


# --- idempotency records ----------------------------------------------------------------


def _insert_idempotency_record(values: dict[str, Any]) -> ReturningInsert[tuple[str]]:
    return (
        insert(IdempotencyRecord)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyRecord.key)
    )


async def insert_idempotency_record(session: AsyncSession | AsyncConnection, values: dict[str, Any]) -> bool:
    """Claim a key; False when the (user, key) record already exists (or is being inserted)."""
    return (await session.execute(_insert_idempotency_record(values))).first() is not None


async def claim_key_knowing_booking(
    connection: AsyncConnection, values: dict[str, Any], booking_id: uuid.UUID
) -> tuple[bool, bool]:
    """Claim a key as ``insert_idempotency_record`` does and, in the same round trip, tell
    whether ``booking.created`` of the booking has arrived: (claimed, booking known)."""
    claimed = _insert_idempotency_record(values).cte("claimed")
    known = select(PayableBooking.booking_id).where(PayableBooking.booking_id == booking_id).exists()
    row = (await connection.execute(select(select(claimed.c.key).exists(), known))).one()
    return bool(row[0]), bool(row[1])


async def get_idempotency_record(
    session: AsyncSession, user_id: uuid.UUID, key: str
) -> IdempotencyRecord | None:
    """The record, locked for this transaction."""
    stmt = (
        select(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().first()


async def update_idempotency_record(
    session: AsyncSession, user_id: uuid.UUID, key: str, **values: Any
) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .values(**values)
    )


async def delete_idempotency_record(
    session: AsyncSession, user_id: uuid.UUID, key: str, *, payment_id: uuid.UUID | None = None
) -> None:
    """Forget a key; with ``payment_id``, only while it is in flight for that payment."""
    stmt = delete(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    if payment_id is not None:
        stmt = stmt.where(IdempotencyRecord.payment_id == payment_id, IdempotencyRecord.state == "in_flight")
    await session.execute(stmt)


def idempotency_retention() -> Retention:
    """For servicekit's housekeeping: completed records go once past ``expires_at``.

    An ``in_flight`` record stays whatever its age: its payment may still be unsettled.
    """
    records = IdempotencyRecord.__table__
    assert isinstance(records, Table)
    state = records.c.state
    return Retention(
        "idempotency_records",
        records,
        expired=(state == "completed") & (records.c.expires_at < func.now()),
        states={"in_flight": state == "in_flight", "completed": state == "completed"},
    )


# --- the saga with booking --------------------------------------------------------------


async def lock_booking(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """Serialise, per booking, finishing a payment with handling that booking's cancellation."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:booking, 0))"), {"booking": str(booking_id)}
    )


async def record_cancelled_booking(
    session: AsyncSession, booking_id: uuid.UUID, reason: str, refund_required: bool
) -> None:
    await session.execute(
        insert(CancelledBooking)
        .values(booking_id=booking_id, reason=reason, refund_required=refund_required)
        .on_conflict_do_nothing(index_elements=["booking_id"])
    )


async def payment_and_booking_end(
    session: AsyncSession, payment_id: uuid.UUID
) -> tuple[Payment, CancelledBooking | None]:
    """The payment, locked, and the recorded end of its booking if any: one round trip."""
    stmt = (
        select(Payment, CancelledBooking)
        .outerjoin(CancelledBooking, CancelledBooking.booking_id == Payment.booking_id)
        .where(Payment.id == payment_id)
        .with_for_update(of=Payment)
        .execution_options(populate_existing=True)
    )
    payment, ended = (await session.execute(stmt)).one()
    return payment, ended


async def record_payable_booking(session: AsyncSession, values: dict[str, Any]) -> None:
    """Keep a booking ``booking.created`` announced; a repeated announcement changes nothing."""
    await session.execute(
        insert(PayableBooking).values(**values).on_conflict_do_nothing(index_elements=["booking_id"])
    )


async def known_booking(
    session: AsyncSession, booking_id: uuid.UUID
) -> tuple[PayableBooking, CancelledBooking | None, int] | None:
    """The booking as ``booking.created`` told it, its recorded end if any, and its declines so
    far (one round trip); None when no ``booking.created`` of it has arrived (yet)."""
    stmt = (
        select(PayableBooking, CancelledBooking, _declines(booking_id).scalar_subquery())
        .outerjoin(CancelledBooking, CancelledBooking.booking_id == PayableBooking.booking_id)
        .where(PayableBooking.booking_id == booking_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1], int(row[2]))


def payable_bookings_retention() -> Retention:
    """For servicekit's housekeeping: a payable booking goes a day after its hold ended (no one
    can pay it then; a booking paid in time has its payment)."""
    bookings = PayableBooking.__table__
    assert isinstance(bookings, Table)
    kept = PAYABLE_BOOKING_KEPT_AFTER_EXPIRY.total_seconds()
    return Retention("payable_bookings", bookings, expired=older_than(bookings.c.expires_at, kept))


async def get_cancelled_booking(session: AsyncSession, booking_id: uuid.UUID) -> CancelledBooking | None:
    return await session.get(CancelledBooking, booking_id)


# --- the simulated provider's ledger ----------------------------------------------------


class LedgerRow(Protocol):
    """A ledger entry as a row (the columns of ``ProviderLedgerEntry`` by name)."""

    operation_id: str
    approved: bool
    decline_code: str | None


async def add_ledger_entry(
    connection: AsyncSession | AsyncConnection, entry: ProviderLedgerEntry
) -> LedgerRow:
    """Insert once per key; a concurrent or repeated key gets the entry recorded first."""
    ledger = ProviderLedgerEntry.__table__
    assert isinstance(ledger, Table)
    columns = {c.key: getattr(entry, c.key) for c in ledger.columns if c.key != "created_at"}
    stmt = (
        insert(ledger)
        .values(**columns)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(*ledger.columns)
    )
    inserted = (await connection.execute(stmt)).first()
    if inserted is not None:  # the usual case: one round trip
        return cast(LedgerRow, inserted)
    recorded = (
        await connection.execute(
            select(*ledger.columns).where(ledger.c.idempotency_key == entry.idempotency_key)
        )
    ).first()
    assert recorded is not None
    return cast(LedgerRow, recorded)


async def count_ledger_entries(session: AsyncSession, reference: str, operation: str) -> int:
    """How many charges (reference: booking id) or refunds (reference: charge id) were made."""
    stmt = select(func.count()).where(
        ProviderLedgerEntry.reference == reference, ProviderLedgerEntry.operation == operation
    )
    return int(await session.scalar(stmt) or 0)
