"""No database connection is held while a payment waits for booking-service or the card provider.

With a pool of ONE connection, a payment parked in the booking call and another parked in the
provider call must not stop a third payment from completing end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from payment_service.bookings import BookingGateway
from payment_service.providers import (
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    RefundRequest,
    RefundResult,
)
from payment_service.schemas import BookingView
from payment_service.service import PAYING

Harness = Any  # the conftest fixture's class (test modules cannot import conftest)
GOOD_CARD = "4242424242424242"


class HeldConnections:
    """Pool connections checked out, per asyncio task (the request runs in the caller's task).

    A connection is returned to the pool from another task than the one that took it (SQLAlchemy
    finishes the return asynchronously), so each return is counted against the task that took it.
    """

    def __init__(self) -> None:
        self.by_task: Counter[asyncio.Task[Any] | None] = Counter()
        self.taken_by: dict[int, asyncio.Task[Any] | None] = {}
        self.seen: list[tuple[str, int]] = []

    def checkout(self, _: Any, record: Any, *__: Any) -> None:
        self.taken_by[id(record)] = task = asyncio.current_task()
        self.by_task[task] += 1

    def checkin(self, _: Any, record: Any) -> None:
        self.by_task[self.taken_by.pop(id(record), None)] -= 1

    def note(self, where: str) -> None:
        self.seen.append((where, self.by_task[asyncio.current_task()]))


@dataclasses.dataclass
class ParkingProvider:
    """The simulated provider, noting held connections and parking charges of chosen bookings."""

    inner: PaymentProvider
    held: HeldConnections
    gates: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)
    name: str = "simulated"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.held.note("provider")
        gate = self.gates.get(request.reference)
        if gate is not None:
            await gate.wait()
        return await self.inner.charge(request)

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self.inner.refund(request)


class NotingGateway(BookingGateway):
    def __init__(self, inner: BookingGateway, held: HeldConnections) -> None:
        self._inner, self._held = inner, held

    async def payable_booking(
        self, booking_id: uuid.UUID, user_id: uuid.UUID, amount: int | None
    ) -> BookingView:
        self._held.note("booking")
        return await self._inner.payable_booking(booking_id, user_id, amount)


@pytest.fixture
async def one_connection(
    start_harness: Any,
) -> AsyncIterator[tuple[Harness, ParkingProvider, HeldConnections]]:
    async with start_harness(db_pool_size=1, db_max_overflow=0) as harness:
        held, pool = HeldConnections(), harness.runtime.engine.sync_engine.pool
        event.listen(pool, "checkout", held.checkout)
        event.listen(pool, "checkin", held.checkin)
        payments = harness.runtime[PAYING]
        provider = ParkingProvider(payments.provider, held)
        harness.runtime[PAYING] = dataclasses.replace(
            payments, provider=provider, bookings=NotingGateway(payments.bookings, held)
        )
        try:
            yield harness, provider, held
        finally:
            harness.runtime[PAYING] = payments


async def test_payments_parked_at_booking_and_provider_hold_no_connection(
    one_connection: tuple[Harness, ParkingProvider, HeldConnections],
) -> None:
    harness, provider, held = one_connection
    user = harness.caller()
    at_booking, at_provider, free = (harness.desk.add(user) for _ in range(3))
    harness.desk.gates[at_booking["id"]] = booking_gate = asyncio.Event()
    provider.gates[at_provider["id"]] = provider_gate = asyncio.Event()
    parked = [
        asyncio.create_task(harness.pay(user, b["id"], card_number=GOOD_CARD))
        for b in (at_booking, at_provider)
    ]
    try:
        third = await asyncio.wait_for(harness.pay(user, free["id"], card_number=GOOD_CARD), timeout=20)
        assert third.status_code == 201, third.text
        assert not any(task.done() for task in parked), "both were still parked"
    finally:
        booking_gate.set()
        provider_gate.set()
    assert [(await task).status_code for task in parked] == [201, 201]
    assert held.seen and all(count == 0 for _, count in held.seen), held.seen
    assert {where for where, _ in held.seen} == {"booking", "provider"}
