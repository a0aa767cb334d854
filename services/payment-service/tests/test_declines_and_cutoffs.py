"""Declined cards: a booking stays payable until its last allowed decline; refunds close at the cut-off."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

GOOD_CARD, DECLINED_CARD, PROVIDER_DOWN_CARD = "4242424242424242", "4000000000000002", "4000000000000119"
Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def test_a_second_card_right_after_a_decline_pays_the_booking(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    declined = await harness.pay(user, booking["id"], key=_key(), card_number=DECLINED_CARD)
    assert declined.status_code == 402, declined.text
    assert declined.json()["error"]["details"]["attempts_left"] == 2
    paid = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201, paid.text
    [failed] = await harness.delivered("payment.failed", booking["id"])
    assert (failed["data"]["final"], failed["data"]["attempts_left"]) == (False, 2)
    await harness.delivered("payment.completed", booking["id"])
    assert await harness.outbox_events("payment.refunded", booking["id"]) == []


async def test_the_last_allowed_decline_is_final_and_no_further_attempt_is_charged(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    down = await harness.pay(user, booking["id"], key=_key(), card_number=PROVIDER_DOWN_CARD)
    assert down.status_code == 503, "provider trouble is not a decline"
    for attempts_left in (2, 1, 0):
        declined = await harness.pay(user, booking["id"], key=_key(), card_number=DECLINED_CARD)
        assert declined.status_code == 402, declined.text
        assert declined.json()["error"]["details"]["attempts_left"] == attempts_left
    events = await harness.delivered("payment.failed", booking["id"], count=3)
    assert [e["data"]["final"] for e in events] == [False, False, True]
    refused = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "too_many_declines"
    assert "Retry-After" not in refused.headers, "waiting does not help"
    assert await harness.outbox_events("payment.completed", booking["id"]) == []
    charges = await harness.charges(booking["id"])
    assert charges == 3, "three declined charges at the provider, nothing after them"


async def test_the_owner_cannot_refund_after_the_cancellation_cut_off_but_an_admin_can(
    harness: Harness,
) -> None:
    user, admin = harness.caller(), harness.caller(roles=("user", "admin"))
    booking = harness.desk.add(user)
    paid = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201, paid.text
    booking["cancellable_until"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refund_url = f"/payments/{paid.json()['id']}/refund"
    refused = await harness.client.post(refund_url, headers=user.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "cancellation_closed"
    assert (await harness.payments_of(booking["id"]))[0].status == "succeeded"
    by_admin = await harness.client.post(refund_url, headers=admin.headers)
    assert by_admin.status_code == 200 and by_admin.json()["refund_reason"] == "requested_by_admin"


async def test_the_owner_cannot_refund_once_a_ticket_was_admitted_but_an_admin_can(harness: Harness) -> None:
    user, admin = harness.caller(), harness.caller(roles=("user", "admin"))
    booking = harness.desk.add(user)
    paid = await harness.pay(user, booking["id"], key=_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201, paid.text
    booking["admitted"] = True
    refund_url = f"/payments/{paid.json()['id']}/refund"
    refused = await harness.client.post(refund_url, headers=user.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "tickets_admitted"
    assert "Retry-After" not in refused.headers, "waiting does not help"
    assert (await harness.payments_of(booking["id"]))[0].status == "succeeded"
    by_admin = await harness.client.post(refund_url, headers=admin.headers)
    assert by_admin.status_code == 200 and by_admin.json()["refund_reason"] == "requested_by_admin"
