"""A payment process SIGKILLed in the middle of the provider call: after a restart the
reconciler resolves the payment within its lease and one pass, with one charge at most."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from faultkit import DATABASE, DB_PASSWORD, PG, Service, Stack, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from payment_service.models import IdempotencyRecord, Payment, ProviderLedgerEntry
from payment_service.providers.simulated import STALL_AFTER_CHARGE_CARD, STALL_BEFORE_CHARGE_CARD
from servicekit.testing import wait_until

LEASE_SECONDS, PASS_SECONDS = 2, 0.5  # the restarted process's lease and reconciler interval
RESOLVED_WITHIN = LEASE_SECONDS + PASS_SECONDS + 10  # and room for a busy machine
GOOD_CARD = "4242424242424242"


Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def payment_db() -> AsyncIterator[Sessions]:
    """payment's tables, read as payment-service's role (the test only looks)."""
    url = f"postgresql+asyncpg://payment_service:{DB_PASSWORD}@{PG[0]}:{PG[1]}/{DATABASE}"
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
async def payment(stack: Stack) -> AsyncIterator[Service]:
    """A payment-service process of this test's own (the stack's keeps running beside it)."""
    service = stack.private_service("payment", f"payment-crash-{uuid.uuid4().hex[:6]}")
    try:
        service.start()
        await service.wait_ready()
        yield service
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("card", "charged"), [(STALL_BEFORE_CHARGE_CARD, False), (STALL_AFTER_CHARGE_CARD, True)]
)
async def test_payment_killed_during_the_charge_is_resolved_after_a_restart(
    stack: Stack,
    payment: Service,
    payment_db: Sessions,
    new_user: Callable[[], User],
    card: str,
    charged: bool,
) -> None:
    user = new_user()
    booking = await _book(stack, user)
    key = f"crash-{uuid.uuid4().hex}"
    paying = asyncio.create_task(_pay(payment, user, booking, key, card))
    await wait_until(lambda: _in_the_charge(payment_db, booking, charged), within=20, what="the charge")
    payment.kill()  # SIGKILL mid-charge: no answer, no clean shutdown
    await asyncio.to_thread(payment.process.wait, 10)  # type: ignore[union-attr]
    with pytest.raises(httpx.TransportError):
        await paying
    payment.env.update(
        IDEMPOTENCY_LOCK_SECONDS=str(LEASE_SECONDS), RECONCILER_INTERVAL_SECONDS=str(PASS_SECONDS)
    )
    payment.start()
    await payment.wait_ready()
    await wait_until(lambda: _resolved(payment_db, booking), within=RESOLVED_WITHIN, what="the reconciler")
    [resolved] = await _payments(payment_db, booking)
    assert await _approved_charges(payment_db, booking) == int(charged), "one charge at most"
    if charged:
        assert resolved.status == "succeeded"
        replay = await _pay(payment, user, booking, key, card)  # the old key answers the charge
        assert replay.status_code == 201 and replay.json()["id"] == str(resolved.id), replay.text
    else:
        assert (resolved.status, resolved.failure_reason) == ("failed", "abandoned")
        assert await _key_record(payment_db, user, key) is None, "the old key is released"
        again = await _pay(payment, user, booking, f"crash-{uuid.uuid4().hex}", GOOD_CARD)
        assert again.status_code == 201, again.text
        assert await _approved_charges(payment_db, booking) == 1
    await wait_until(
        lambda: _booking_confirmed(stack, user, booking), within=20, what="the booking confirmed"
    )


async def _book(stack: Stack, user: User) -> dict[str, Any]:
    showtime = await stack.showtime()
    async with httpx.AsyncClient(timeout=10) as client:
        body = {"showtime_id": showtime["id"], "seat_ids": ["B5"]}
        booked = await client.post(f"{stack.url('booking')}/book", json=body, headers=user.headers)
    assert booked.status_code == 201, booked.text
    return dict(booked.json())


async def _pay(payment: Service, user: User, booking: dict[str, Any], key: str, card: str) -> httpx.Response:
    body = {"booking_id": booking["id"], "payment_method": "credit_card", "card_number": card}
    headers = {**user.headers, "Idempotency-Key": key}
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{payment.url}/process", json=body, headers=headers)


async def _payments(db: Sessions, booking: dict[str, Any]) -> list[Payment]:
    async with db() as session:
        stmt = select(Payment).where(Payment.booking_id == uuid.UUID(booking["id"]))
        return list((await session.scalars(stmt)).all())


async def _approved_charges(db: Sessions, booking: dict[str, Any]) -> int:
    """Charges the simulated provider approved for the booking (its ledger; voids are not charges)."""
    async with db() as session:
        stmt = select(ProviderLedgerEntry.approved).where(
            ProviderLedgerEntry.reference == booking["id"], ProviderLedgerEntry.operation == "charge"
        )
        return sum(1 for approved in (await session.scalars(stmt)).all() if approved)


async def _in_the_charge(db: Sessions, booking: dict[str, Any], charged: bool) -> bool:
    """The payment is pending at the provider (and, if ``charged``, the charge is recorded)."""
    pending = [p for p in await _payments(db, booking) if p.status == "pending"]
    return bool(pending) and (not charged or await _approved_charges(db, booking) == 1)


async def _resolved(db: Sessions, booking: dict[str, Any]) -> bool:
    payments = await _payments(db, booking)
    return bool(payments) and all(p.status != "pending" for p in payments)


async def _key_record(db: Sessions, user: User, key: str) -> IdempotencyRecord | None:
    async with db() as session:
        return await session.get(IdempotencyRecord, (user.user_id, key))


async def _booking_confirmed(stack: Stack, user: User, booking: dict[str, Any]) -> bool:
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"{stack.url('booking')}/bookings/{booking['id']}"
        return (await client.get(url, headers=user.headers)).json()["status"] == "confirmed"
