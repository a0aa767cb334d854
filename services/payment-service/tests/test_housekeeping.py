"""Idempotency records are pruned by servicekit's housekeeping pass, after their documented lifetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import insert, select

from payment_service.models import IdempotencyRecord

Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


async def _add_record(
    harness: Harness, user_id: uuid.UUID, key: str, state: str, expires_in: timedelta
) -> None:
    now = datetime.now(UTC)
    values = {
        "user_id": user_id,
        "key": key,
        "fingerprint": "f" * 64,
        "state": state,
        "response_status": 201 if state == "completed" else None,
        "response_body": {} if state == "completed" else None,
        "locked_until": now,
        "expires_at": now + expires_in,
    }
    async with harness.runtime.sessionmaker() as session, session.begin():
        await session.execute(insert(IdempotencyRecord).values(**values))


async def _keys(harness: Harness, user_id: uuid.UUID) -> set[str]:
    async with harness.runtime.sessionmaker() as session:
        stmt = select(IdempotencyRecord.key).where(IdempotencyRecord.user_id == user_id)
        return set((await session.execute(stmt)).scalars())


async def test_completed_records_past_their_expiry_go_and_in_flight_ones_stay(harness: Harness) -> None:
    user_id = uuid.uuid4()
    await _add_record(harness, user_id, "expired", "completed", -timedelta(hours=1))
    await _add_record(harness, user_id, "live", "completed", timedelta(hours=23))
    await _add_record(harness, user_id, "stuck", "in_flight", -timedelta(days=2))
    housekeeper = harness.runtime.housekeeper
    assert housekeeper is not None

    assert await housekeeper.run_pass() is True

    assert await _keys(harness, user_id) == {"live", "stuck"}
    labels = {"service": "payment-service", "table": "idempotency_records", "state": "in_flight"}
    assert (REGISTRY.get_sample_value("housekeeping_table_rows", labels) or 0) >= 1


async def test_payable_bookings_go_a_day_after_their_hold_ended(harness: Harness) -> None:
    from payment_service.models import PayableBooking

    now, user_id = datetime.now(UTC), uuid.uuid4()
    ends = {"long_gone": now - timedelta(days=1, minutes=5), "just_ended": now - timedelta(hours=23),
            "live": now + timedelta(minutes=5)}  # fmt: skip
    ids = {name: uuid.uuid4() for name in ends}
    rows = [
        {"booking_id": ids[name], "user_id": user_id, "amount": 100, "currency": "USD", "expires_at": end}
        for name, end in ends.items()
    ]
    async with harness.runtime.sessionmaker() as session, session.begin():
        await session.execute(insert(PayableBooking).values(rows))
    housekeeper = harness.runtime.housekeeper
    assert housekeeper is not None

    assert await housekeeper.run_pass() is True

    async with harness.runtime.sessionmaker() as session:
        stmt = select(PayableBooking.booking_id).where(PayableBooking.user_id == user_id)
        kept = set((await session.execute(stmt)).scalars())
    assert kept == {ids["just_ended"], ids["live"]}
