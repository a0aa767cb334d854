"""Every SQL statement of payment-service (and of its simulated provider's ledger)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import DateTime, Integer, Table, TextClause, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached
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
from servicekit import hotsql
from servicekit.events import EventEnvelope, outbox_insert_per_row, outbox_row
from servicekit.events.outbox import WRITTEN_KEY
from servicekit.housekeeping import Retention, older_than


def hotsql_form(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """A ``text()`` statement with named parameters (as servicekit's outbox insert is written) in
    asyncpg's form: its SQL with ``$1, $2 ...`` (typed parameters cast) and their names in order."""
    compiled = statement.compile(dialect=asyncpg_dialect())
    assert compiled.positiontup is not None
    return compiled.string, tuple(compiled.positiontup)


# The statements of every payment, straight on asyncpg (servicekit.hotsql); the rest is SQLAlchemy.
LOCK_BOOKING_OF = "SELECT pg_advisory_xact_lock(hashtextextended('{}', 0))"
CLAIM_KEY_KNOWING_BOOKING = """
WITH claimed AS (
    INSERT INTO idempotency_records (user_id, key, fingerprint, state, locked_until, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING key
)
SELECT EXISTS (SELECT FROM claimed) AS claimed,
       EXISTS (SELECT FROM payable_bookings WHERE booking_id = $7) AS known
"""
COMPLETE_KEY = """
UPDATE idempotency_records SET state = 'completed', response_status = $3, response_body = $4
WHERE user_id = $1 AND key = $2
"""
ADD_LEDGER_ENTRY = """
INSERT INTO simulated_provider_ledger (idempotency_key, operation, operation_id, reference, amount,
                                       currency, approved, decline_code, card_brand, card_last4)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING operation_id, approved, decline_code
"""
_PAYMENT_COLUMN_NAMES = cast(Table, Payment.__table__).c.keys()
_PAYMENT_COLUMNS = ", ".join(_PAYMENT_COLUMN_NAMES)
_BOOKING_END = (
    "c.reason AS end_reason, c.refund_required AS end_refund_required, c.received_at AS end_received_at"
)


def _declines(booking: str, not_a_decline: str) -> str:
    """How many of the booking's payments the card declined (parameters: the booking, and
    NOT_A_DECLINE: failures that were not the card's answer)."""
    return f"""SELECT count(*) FROM payments
WHERE booking_id = {booking} AND status = 'failed' AND NOT failure_reason = ANY ({not_a_decline}::text[])"""


# A pending payment linked to its key, unless the booking's declines ($12: NOT_A_DECLINE) reached
# $13 (no row then).
START_PAYMENT_OF_KEY = f"""
WITH payment AS (
    INSERT INTO payments (id, user_id, user_email, booking_id, amount, currency, status,
                          payment_method, card_brand, card_last4, idempotency_key, provider)
    SELECT $1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11
    WHERE ({_declines("$4", "$12")}) < $13::integer
    RETURNING {_PAYMENT_COLUMNS}
), attached AS (
    UPDATE idempotency_records r SET payment_id = payment.id FROM payment WHERE r.user_id = $2 AND r.key = $10
)
SELECT * FROM payment
"""
COUNT_DECLINES = _declines("$1", "$2")
_PAYABLE_BOOKING_COLUMNS = cast(Table, PayableBooking.__table__).c.keys()
KNOWN_BOOKING = f"""
SELECT {", ".join(f"b.{name}" for name in _PAYABLE_BOOKING_COLUMNS)},
       {_BOOKING_END},
       ({COUNT_DECLINES}) AS declines
FROM payable_bookings b LEFT JOIN cancelled_bookings c ON c.booking_id = b.booking_id
WHERE b.booking_id = $1
"""
PAYMENT_AND_BOOKING_END = f"""
SELECT {", ".join(f"p.{name}" for name in _PAYMENT_COLUMN_NAMES)}, {_BOOKING_END}
FROM payments p LEFT JOIN cancelled_bookings c ON c.booking_id = p.booking_id
WHERE p.id = $1
FOR UPDATE OF p
"""
# Starting a payment of a booking ``booking.created`` announced, after the booking's lock, in
# one round trip: the booking as announced, its recorded end, its declines (KNOWN_BOOKING, $1
# and $2) and, when this caller ($3) may pay it (not ended, unexpired at $11, the amount $12 if
# given, attempts left below $13), the new pending payment ($4-$10) linked to its key. The caller
# tells from the booking's columns why no payment was added.
START_KNOWN_PAYMENT = f"""
WITH booking AS ({KNOWN_BOOKING}
), payment AS (
    INSERT INTO payments (id, user_id, user_email, booking_id, amount, currency, status,
                          payment_method, card_brand, card_last4, idempotency_key, provider)
    SELECT $4, $3, COALESCE($5, b.user_email, ''), b.booking_id, b.amount, b.currency, 'pending',
           $6, $7, $8, $9, $10
    FROM booking b
    WHERE b.user_id = $3 AND b.end_reason IS NULL AND b.expires_at > $11::timestamptz
      AND b.amount = COALESCE($12::integer, b.amount) AND b.declines < $13::integer
    RETURNING {_PAYMENT_COLUMNS}
), attached AS (
    UPDATE idempotency_records r SET payment_id = payment.id FROM payment
    WHERE r.user_id = $3 AND r.key = $9
)
SELECT booking.*, {", ".join(f"payment.{name} AS payment_{name}" for name in _PAYMENT_COLUMN_NAMES)}
FROM booking LEFT JOIN payment ON true
"""
# Finishing the usual payment, after the booking's lock, in one round trip: approved, still
# pending, its booking not ended. The payment succeeds, its ``payment.completed`` goes to the
# outbox (servicekit's insert, once per row of ``finished``: no row, no event) and its key keeps
# the answer. Nothing is written when the payment was finished meanwhile or its booking ended:
# the caller then takes the general path (a refund, a twin's answer).
_PAYMENT_COMPLETED = outbox_insert_per_row("finished")
SUCCEED_PAYMENT_OF_LIVE_BOOKING, _SUCCEED_PARAMETERS = hotsql_form(
    text(
        f"""
WITH finished AS (
    UPDATE payments p SET status = 'succeeded', provider_charge_id = :charge_id, updated_at = :updated_at
    WHERE p.id = :payment_id AND p.status = 'pending'
      AND NOT EXISTS (SELECT FROM cancelled_bookings c WHERE c.booking_id = p.booking_id)
    RETURNING p.id
), completed AS (
    UPDATE idempotency_records r SET state = 'completed', response_status = :response_status,
                                     response_body = :response_body
    FROM finished WHERE r.user_id = :user_id AND r.key = :key
), new_event AS (
    {_PAYMENT_COMPLETED.sql}
)
SELECT count(*) FROM finished
"""
    ).bindparams(
        bindparam("payment_id", type_=UUID(as_uuid=True)),
        bindparam("user_id", type_=UUID(as_uuid=True)),
        bindparam("updated_at", type_=DateTime(timezone=True)),
        bindparam("response_status", type_=Integer),
        bindparam("response_body", type_=JSONB),
        *_PAYMENT_COMPLETED.bindparams,
    )
)
LEDGER_ENTRY = """
SELECT operation_id, approved, decline_code FROM simulated_provider_ledger WHERE idempotency_key = $1
"""

# A payable booking is kept this long after its hold's end: a late retry is still answered here.
PAYABLE_BOOKING_KEPT_AFTER_EXPIRY = timedelta(days=1)

# --- payments ---------------------------------------------------------------------------


async def add_payment(session: AsyncSession, payment: Payment) -> Payment:
    """Insert; raises IntegrityError when the booking already has a pending or succeeded payment."""
    session.add(payment)
    await session.flush()
    return payment


async def start_payment_of_key(session: AsyncSession, payment: Payment, max_declines: int) -> Payment | None:
    """Insert a pending payment and link it to its idempotency key (one round trip), unless the
    card was declined ``max_declines`` times for the booking (None); raises IntegrityError when
    the booking already has a pending or succeeded payment.

    The payment comes back as a plain object (not in the session), as stored.
    """
    p = payment
    row = await hotsql.fetchrow(
        session,
        START_PAYMENT_OF_KEY,
        *(p.id or uuid.uuid4(), p.user_id, p.user_email, p.booking_id, p.amount, p.currency),
        *(p.payment_method, p.card_brand, p.card_last4, p.idempotency_key, p.provider),
        *(list(NOT_A_DECLINE), max_declines),
    )
    return None if row is None else Payment(**row)


@dataclass(frozen=True)
class PayableWhen:
    """What a request asks of a known booking to pay it (``bookings.check_payable``'s rules)."""

    now: datetime
    amount: int | None
    max_declines: int


@dataclass(frozen=True)
class KnownStart:
    """A known booking as read when starting its payment, and the payment if one was added."""

    booking: PayableBooking
    ended: CancelledBooking | None
    declines: int
    payment: Payment | None


async def start_known_payment(
    session: AsyncSession, payment: Payment, when: PayableWhen
) -> KnownStart | None:
    """Read a known booking and, if payable as ``when`` asks, insert ``payment`` (amount, currency
    and a missing email from the booking) linked to its key: one round trip. None when no
    ``booking.created`` of it has arrived (yet); raises IntegrityError when the booking already
    has a pending or succeeded payment. Plain objects, not in the session."""
    p = payment
    row = await hotsql.fetchrow(
        session,
        START_KNOWN_PAYMENT,
        *(p.booking_id, list(NOT_A_DECLINE), p.user_id, p.id or uuid.uuid4(), p.user_email or None),
        *(p.payment_method, p.card_brand, p.card_last4, p.idempotency_key, p.provider),
        *(when.now, when.amount, when.max_declines),
    )
    if row is None:
        return None
    booking = PayableBooking(**{name: row[name] for name in _PAYABLE_BOOKING_COLUMNS})
    started = None
    if row["payment_id"] is not None:
        started = Payment(**{name: row[f"payment_{name}"] for name in _PAYMENT_COLUMN_NAMES})
    return KnownStart(booking, _recorded_end(p.booking_id, row), int(row["declines"]), started)


def copy_payment(payment: Payment, **changes: Any) -> Payment:
    """A plain copy of ``payment``'s columns (not in any session) with ``changes``."""
    return Payment(**{name: getattr(payment, name) for name in _PAYMENT_COLUMN_NAMES} | changes)


async def succeed_payment_of_live_booking(
    session: AsyncSession, succeeded: Payment, event: EventEnvelope, answer: tuple[uuid.UUID, str, int, Any]
) -> bool:
    """Store ``succeeded`` (a pending payment's copy with its charge) with ``event`` in the outbox
    and ``answer`` (user, key, status, body) under its key, in one round trip, if the payment is
    still pending and its booking has not ended; False (nothing written) otherwise."""
    s, row = succeeded, outbox_row(event)
    user_id, key, status, body = answer
    values = {
        "payment_id": s.id,
        "charge_id": s.provider_charge_id,
        "updated_at": s.updated_at,
        "user_id": user_id,
        "key": key,
        "response_status": status,
        "response_body": json.dumps(body),
        **row,
        "payload": orjson.dumps(row["payload"]).decode(),
    }
    args = (values[name] for name in _SUCCEED_PARAMETERS)
    if not await hotsql.fetchval(session, SUCCEED_PAYMENT_OF_LIVE_BOOKING, *args):
        return False
    session.info[WRITTEN_KEY] = True  # its commit wakes the relay, as ``add_event``'s does
    return True


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


async def count_declines(session: AsyncSession, booking_id: uuid.UUID) -> int:
    """How many of the booking's payments the card declined (provider trouble does not count)."""
    return int(await hotsql.fetchval(session, COUNT_DECLINES, booking_id, list(NOT_A_DECLINE)))


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
    v = values
    row = await hotsql.fetchrow(
        connection,
        CLAIM_KEY_KNOWING_BOOKING,
        *(v["user_id"], v["key"], v["fingerprint"], v["state"], v["locked_until"], v["expires_at"]),
        booking_id,
    )
    assert row is not None
    return bool(row["claimed"]), bool(row["known"])


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


async def complete_key(session: AsyncSession, user_id: uuid.UUID, key: str, status: int, body: Any) -> None:
    """The key's answer to replay, stored with the payment's outcome."""
    await hotsql.execute(session, COMPLETE_KEY, user_id, key, status, json.dumps(body))


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
    """Serialise, per booking, finishing a payment with handling that booking's cancellation.

    As a transaction's first statement it is sent with the BEGIN (its value a UUID's text)."""
    await hotsql.begin_with(session, LOCK_BOOKING_OF.format(uuid.UUID(str(booking_id))))


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
    """The payment, locked, and the recorded end of its booking if any: one round trip.

    The payment is put in the session as loaded (no second read): what the caller changes on
    it is written when the session flushes."""
    row = await hotsql.fetchrow(session, PAYMENT_AND_BOOKING_END, payment_id)
    assert row is not None
    payment = Payment(**{name: row[name] for name in _PAYMENT_COLUMN_NAMES})
    make_transient_to_detached(payment)
    session.add(payment)
    return payment, _recorded_end(payment.booking_id, row)


def _recorded_end(booking_id: uuid.UUID, row: hotsql.Row) -> CancelledBooking | None:
    """The ``end_*`` columns of a row, as the booking's recorded end (None: not ended)."""
    if row["end_reason"] is None:
        return None
    return CancelledBooking(
        booking_id=booking_id,
        reason=row["end_reason"],
        refund_required=row["end_refund_required"],
        received_at=row["end_received_at"],
    )


def record_payable_booking_with_claim_sql(claim: str) -> str:
    """``booking.created``: keep what paying the booking needs, with the consumer's dedupe record
    ``claim`` (servicekit's ``claim_sql``, parameters $1-$3) in one statement. The booking ($4-$9)
    is kept only when the event is claimed (a redelivery changes nothing); the row says whether
    it was."""
    return f"""
    WITH claimed AS ({claim}), kept AS (
        INSERT INTO payable_bookings (booking_id, user_id, user_email, amount, currency, expires_at)
        SELECT $4::uuid, $5::uuid, $6::text, $7::int, $8::text, $9::timestamptz FROM claimed
        ON CONFLICT (booking_id) DO NOTHING
    )
    SELECT EXISTS (SELECT 1 FROM claimed) AS claimed
    """


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


@dataclass(frozen=True)
class LedgerRow:
    """What a ledger entry answers a charge, refund or void."""

    operation_id: str
    approved: bool
    decline_code: str | None


async def add_ledger_entry(connection: AsyncConnection, entry: ProviderLedgerEntry) -> LedgerRow:
    """Insert once per key; a concurrent or repeated key gets the entry recorded first."""
    e = entry
    row = await hotsql.fetchrow(
        connection,
        ADD_LEDGER_ENTRY,
        *(e.idempotency_key, e.operation, e.operation_id, e.reference, e.amount, e.currency),
        *(e.approved, e.decline_code, e.card_brand, e.card_last4),
    )
    if row is None:  # the key was recorded before: its first entry answers
        row = await hotsql.fetchrow(connection, LEDGER_ENTRY, e.idempotency_key)
        assert row is not None
    return LedgerRow(**row)


async def count_ledger_entries(session: AsyncSession, reference: str, operation: str) -> int:
    """How many charges (reference: booking id) or refunds (reference: charge id) were made."""
    stmt = select(func.count()).where(
        ProviderLedgerEntry.reference == reference, ProviderLedgerEntry.operation == operation
    )
    return int(await session.scalar(stmt) or 0)
