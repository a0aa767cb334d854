"""Refunds on request, and the saga: booking.cancelled refunds the booking's payment once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from payment_service import repository
from servicekit.metrics import EVENTS_CONSUMED
from servicekit.testing import wait_until

Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


async def _paid(harness: Harness, user: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    booking = harness.desk.add(user)
    response = await harness.pay(user, booking["id"], card_number="4242424242424242")
    assert response.status_code == 201, response.text
    return booking, response.json()


def _cancelled_event(
    harness: Harness, booking: dict[str, Any], event_type: str = "booking.cancelled", **data: Any
) -> dict[str, Any]:
    """A booking.cancelled event (or, with ``event_type``, booking.expired: the fields payment reads)."""
    defaults = {"reason": "user_cancelled", "refund_required": True, "payment_id": None}
    return dict(harness.booking_event(event_type, booking, **{**defaults, **data}))


async def test_the_owner_refunds_once_and_payment_refunded_is_published(harness: Harness) -> None:
    user = harness.caller()
    booking, payment = await _paid(harness, user)
    refund_url = f"/payments/{payment['id']}/refund"
    refunded = await harness.client.post(refund_url, headers=user.headers)
    assert refunded.status_code == 200, refunded.text
    body = refunded.json()
    assert body["status"] == "refunded" and body["refund_reason"] == "requested_by_customer"
    again = await harness.client.post(refund_url, headers=user.headers)
    assert again.status_code == 200 and again.json() == body
    [db_payment] = await harness.payments_of(booking["id"])
    assert await harness.refunds(db_payment.provider_charge_id) == 1
    events = await harness.delivered("payment.refunded", booking["id"])
    assert events[0]["data"] == {
        "payment_id": payment["id"],
        "booking_id": booking["id"],
        "user_id": str(user.user_id),
        "user_email": user.email,
        "amount": payment["amount"],
        "currency": "USD",
        "reason": "requested_by_customer",
    }
    assert len(await harness.outbox_events("payment.refunded", booking["id"])) == 1


async def test_only_the_owner_or_an_admin_may_refund(harness: Harness) -> None:
    user, stranger, admin = harness.caller(), harness.caller(), harness.caller(roles=("user", "admin"))
    booking, payment = await _paid(harness, user)
    refund_url = f"/payments/{payment['id']}/refund"
    assert (await harness.client.post(refund_url, headers=stranger.headers)).status_code == 404
    by_admin = await harness.client.post(refund_url, headers=admin.headers)
    assert by_admin.status_code == 200 and by_admin.json()["refund_reason"] == "requested_by_admin"
    [refunded] = await harness.delivered("payment.refunded", booking["id"])
    assert refunded["data"]["reason"] == "requested_by_admin", "booking and the mail tell the admin's refund"
    missing = await harness.client.post(f"/payments/{uuid.uuid4()}/refund", headers=user.headers)
    assert missing.status_code == 404


async def test_a_failed_payment_cannot_be_refunded(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    declined = await harness.pay(user, booking["id"], card_number="4000000000000002")
    payment_id = declined.json()["error"]["details"]["payment_id"]
    refused = await harness.client.post(f"/payments/{payment_id}/refund", headers=user.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "payment_not_refundable"


@pytest.mark.parametrize(
    ("event_type", "data", "refund_reason"),
    [
        ("booking.cancelled", {"reason": "user_cancelled"}, "user_cancelled"),
        (
            "booking.cancelled",
            {"reason": "user_cancelled", "refund_required": False},
            "paid_after_cancellation",
        ),
        ("booking.cancelled", {"reason": "payment_after_expiry"}, "paid_after_expiry"),
        ("booking.expired", {"movie_title": "The Test Reel"}, "paid_after_expiry"),
    ],
)
async def test_a_booking_that_ended_refunds_its_payment_exactly_once_saying_why(
    harness: Harness, event_type: str, data: dict[str, Any], refund_reason: str
) -> None:
    user = harness.caller()
    booking, payment = await _paid(harness, user)
    duplicates = EVENTS_CONSUMED.labels("payment-service", event_type, "duplicate")
    seen_before = duplicates._value.get()
    named = {} if event_type == "booking.expired" else {"payment_id": payment["id"]}
    event = _cancelled_event(harness, booking, event_type=event_type, **named, **data)
    second = _cancelled_event(
        harness, booking, event_type=event_type, **named, **data
    )  # booking said it twice
    for message in (event, event, second):
        await harness.spy.publish(event_type, message)
    await harness.delivered("payment.refunded", booking["id"])
    await wait_until(lambda: _consumed(harness, [event["event_id"], second["event_id"]]), what="both events")
    await wait_until(_more_than(duplicates, seen_before), what="the redelivered event skipped")
    [db_payment] = await harness.payments_of(booking["id"])
    assert db_payment.status == "refunded" and db_payment.refund_reason == refund_reason
    assert await harness.refunds(db_payment.provider_charge_id) == 1
    assert len(await harness.outbox_events("payment.refunded", booking["id"])) == 1


async def test_a_cancel_that_races_the_charge_refunds_it_as_soon_as_it_succeeds(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    gate = harness.desk.gates[booking["id"]] = asyncio.Event()
    paying = asyncio.create_task(harness.pay(user, booking["id"]))  # read the booking while pending...
    try:
        # ...the user cancels the pending booking meanwhile (no payment known to booking yet)
        await harness.spy.publish(
            "booking.cancelled", _cancelled_event(harness, booking, refund_required=False)
        )
        await wait_until(lambda: _cancellation_recorded(harness, booking["id"]), what="the cancellation")
    finally:
        gate.set()
    response = await paying
    assert response.status_code == 409 and response.json()["error"]["code"] == "booking_cancelled"
    [db_payment] = await harness.payments_of(booking["id"])
    assert (db_payment.status, db_payment.refund_reason) == ("refunded", "paid_after_cancellation")
    assert await harness.charges(booking["id"]) == 1
    assert await harness.refunds(db_payment.provider_charge_id) == 1
    await harness.delivered("payment.refunded", booking["id"])
    assert len(await harness.outbox_events("payment.completed", booking["id"])) == 1


async def test_a_cancelled_booking_without_a_payment_changes_nothing(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    event = _cancelled_event(harness, booking, refund_required=False, reason="payment_failed")
    await harness.spy.publish("booking.cancelled", event)
    await wait_until(lambda: _consumed(harness, [event["event_id"]]), what="the event")
    assert await harness.payments_of(booking["id"]) == []


async def _consumed(harness: Harness, event_ids: list[str]) -> bool:
    from sqlalchemy import func, select

    from payment_service.models import processed_events

    ids = [uuid.UUID(e) for e in event_ids]
    async with harness.runtime.sessionmaker() as session:
        stmt = select(func.count()).where(processed_events.c.event_id.in_(ids))
        return int(await session.scalar(stmt) or 0) == len(ids)


async def _cancellation_recorded(harness: Harness, booking_id: str) -> bool:
    async with harness.runtime.sessionmaker() as session:
        return await repository.get_cancelled_booking(session, uuid.UUID(booking_id)) is not None


def _more_than(counter: Any, value: float) -> Any:
    async def probe() -> bool:
        return bool(counter._value.get() > value)

    return probe
