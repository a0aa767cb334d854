"""Bookings known from ``booking.created`` are paid without a call to booking-service, with the
same answers as when booking-service is asked; a booking not known yet is asked of it as before."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_service.service import PAYING
from servicekit.events import new_event
from servicekit.testing import round_trips, wait_until

GOOD_CARD, DECLINED_CARD = "4242424242424242", "4000000000000002"
Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


def _ended_event(booking: dict[str, Any], event_type: str, **data: Any) -> dict[str, Any]:
    """booking-service's ``booking.cancelled`` or ``booking.expired`` (the fields payment reads)."""
    data = {"booking_id": booking["id"], "user_id": booking["user_id"], "payment_id": None, **data}
    return new_event(event_type, "booking-service", data).model_dump(mode="json")


async def _end(harness: Harness, booking: dict[str, Any], event_type: str, **data: Any) -> None:
    event = _ended_event(booking, event_type, **data)
    await harness.spy.publish(event_type, event)
    await wait_until(lambda: harness.consumed(event["event_id"]), what=f"{event_type} of {booking['id']}")


async def test_a_booking_known_from_booking_created_is_paid_without_asking_booking(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user, amount=3300)
    await harness.announce(booking)
    paid = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 3300, "USD")
    assert harness.desk.calls[booking["id"]] == 0
    [event] = await harness.delivered("payment.completed", booking["id"])
    assert (event["data"]["payment_id"], event["data"]["user_email"]) == (payment["id"], user.email)
    assert await harness.charges(booking["id"]) == 1


@pytest.mark.parametrize("known", [True, False], ids=["known", "asked_of_booking"])
async def test_a_booking_is_paid_in_eight_round_trips_to_postgresql(harness: Harness, known: bool) -> None:
    """The key's claim; the start: BEGIN with the booking's lock, the read (of a known booking),
    declines and insert, COMMIT; the provider's ledger; the finish: BEGIN with the lock, the
    outcome with its event and the key's answer, COMMIT (docs/benchmarks.md, issue 16)."""
    user = harness.caller()
    booking = harness.desk.add(user)
    if known:
        await harness.announce(booking)
    with round_trips() as sent:
        paid = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201, paid.text
    assert sent[0] == 8 and harness.desk.calls[booking["id"]] == (0 if known else 1)
    [event] = await harness.delivered("payment.completed", booking["id"])
    assert event["data"]["payment_id"] == paid.json()["id"]


async def test_a_booking_whose_event_has_not_arrived_is_asked_of_booking_as_before(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user, amount=2700)
    paid = await harness.pay(user, booking["id"], key=_key())
    assert paid.status_code == 201 and paid.json()["amount"] == 2700
    assert harness.desk.calls[booking["id"]] == 1
    await harness.announce(booking)  # arriving late changes nothing: the payment is there
    again = await harness.pay(user, booking["id"], key=_key())
    assert again.status_code == 409 and again.json()["error"]["code"] == "booking_already_paid"
    assert await harness.charges(booking["id"]) == 1


async def test_booking_created_said_twice_or_redelivered_is_kept_once(harness: Harness) -> None:
    from sqlalchemy import func, select

    from payment_service.models import PayableBooking

    user = harness.caller()
    booking = harness.desk.add(user, amount=1500)
    first = await harness.announce(booking)
    await harness.spy.publish("booking.created", first)  # the broker redelivers it
    await harness.announce(booking, total_amount=9999)  # another event id: the first one stands
    async with harness.runtime.sessionmaker() as session:
        stmt = select(func.count(), func.min(PayableBooking.amount)).where(
            PayableBooking.booking_id == uuid.UUID(booking["id"])
        )
        assert tuple((await session.execute(stmt)).one()) == (1, 1500)
    paid = await harness.pay(user, booking["id"], key=_key(), amount=1500)
    assert paid.status_code == 201 and harness.desk.calls[booking["id"]] == 0


def _past() -> str:
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat()


@pytest.mark.parametrize(
    ("situation", "status", "code"),
    [
        ("cancelled", 409, "booking_not_pending"),
        ("cancelled_before_created", 409, "booking_not_pending"),
        ("expired_event", 409, "booking_not_pending"),
        ("failed", 409, "booking_not_pending"),
        ("hold_ran_out", 409, "booking_expired"),
        ("another_users", 404, "booking_not_found"),
        ("amount_mismatch", 422, "amount_mismatch"),
    ],
)
async def test_a_known_booking_that_cannot_be_paid_is_refused_as_booking_would(
    harness: Harness, situation: str, status: int, code: str
) -> None:
    """The desk still says the booking is the caller's, pending and payable: only the local copy
    (and, for the amount, the request) can refuse it."""
    user, payer = harness.caller(), None
    booking = harness.desk.add(user, amount=2000)
    body: dict[str, Any] = {}
    if situation == "cancelled_before_created":  # the events arrived out of order
        await _end(harness, booking, "booking.cancelled", reason="user_cancelled", refund_required=False)
    await harness.announce(booking, **({"expires_at": _past()} if situation == "hold_ran_out" else {}))
    if situation == "cancelled":
        await _end(harness, booking, "booking.cancelled", reason="user_cancelled", refund_required=False)
    elif situation == "expired_event":
        await _end(harness, booking, "booking.expired", movie_title="The Test Reel")
    elif situation == "failed":
        await _end(harness, booking, "booking.cancelled", reason="payment_failed", refund_required=False)
    elif situation == "another_users":
        payer = harness.caller()
    elif situation == "amount_mismatch":
        body["amount"] = 1999
    key = _key()
    refused = await harness.pay(payer or user, booking["id"], key=key, **body)
    assert refused.status_code == status and refused.json()["error"]["code"] == code, refused.text
    assert "Retry-After" not in refused.headers
    assert harness.desk.calls[booking["id"]] == 0
    assert await harness.charges(booking["id"]) == 0 and await harness.payments_of(booking["id"]) == []
    if situation == "amount_mismatch":  # nothing was charged, so the same key may try again
        retried = await harness.pay(user, booking["id"], key=key, amount=2000)
        assert retried.status_code == 201 and harness.desk.calls[booking["id"]] == 0


async def test_a_paid_known_booking_answers_as_booking_says_and_is_never_charged_twice(
    harness: Harness,
) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    await harness.announce(booking)
    assert (await harness.pay(user, booking["id"], key=_key())).status_code == 201
    assert harness.desk.calls[booking["id"]] == 0
    # booking-service has not consumed payment.completed yet: the booking still says pending
    second = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert second.status_code == 409 and second.json()["error"]["code"] == "booking_already_paid"
    booking["status"] = "confirmed"
    third = await harness.pay(user, booking["id"], key=_key())
    assert third.status_code == 409 and third.json()["error"]["code"] == "booking_not_pending"
    assert "Retry-After" not in second.headers and "Retry-After" not in third.headers
    assert harness.desk.calls[booking["id"]] == 2, "asked only to tell the two apart"
    assert await harness.charges(booking["id"]) == 1
    assert len(await harness.payments_of(booking["id"])) == 1


async def test_a_known_booking_is_refused_after_its_last_allowed_decline(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    await harness.announce(booking)
    for attempts_left in (2, 1, 0):
        declined = await harness.pay(user, booking["id"], key=_key(), card_number=DECLINED_CARD)
        assert declined.status_code == 402, declined.text
        assert declined.json()["error"]["details"]["attempts_left"] == attempts_left
    refused = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "too_many_declines"
    assert harness.desk.calls[booking["id"]] == 0
    assert await harness.charges(booking["id"]) == 3


class _GatedProvider:
    """The simulated provider, but a charge waits for the gate."""

    def __init__(self, inner: Any, gate: asyncio.Event) -> None:
        self._inner, self._gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def charge(self, request: Any) -> Any:
        await self._gate.wait()
        return await self._inner.charge(request)


@pytest.fixture
async def charge_gate(harness: Harness) -> AsyncIterator[asyncio.Event]:
    """Hold every charge of the module's payment-service until the gate is set."""
    runtime, gate = harness.runtime, asyncio.Event()
    payments = runtime[PAYING]
    runtime[PAYING] = dataclasses.replace(payments, provider=_GatedProvider(payments.provider, gate))
    try:
        yield gate
    finally:
        gate.set()
        runtime[PAYING] = payments


async def test_a_cancel_while_a_known_booking_is_charged_refunds_it(
    harness: Harness, charge_gate: asyncio.Event
) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    await harness.announce(booking)
    paying = asyncio.create_task(harness.pay(user, booking["id"], key=_key()))
    try:

        async def pending() -> bool:
            return [p.status for p in await harness.payments_of(booking["id"])] == ["pending"]

        await wait_until(pending, what="the payment to be started")
        await _end(harness, booking, "booking.cancelled", reason="user_cancelled", refund_required=False)
    finally:
        charge_gate.set()
    response = await paying
    assert response.status_code == 409 and response.json()["error"]["code"] == "booking_cancelled"
    [payment] = await harness.payments_of(booking["id"])
    assert (payment.status, payment.refund_reason) == ("refunded", "paid_after_cancellation")
    assert await harness.charges(booking["id"]) == 1
    assert await harness.refunds(payment.provider_charge_id) == 1
    assert harness.desk.calls[booking["id"]] == 0
