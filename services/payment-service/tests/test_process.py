"""POST /process: paying, idempotency keys, bookings that cannot be paid, card outcomes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from payment_service.schemas import PaymentOut
from payment_service.service import PAYING
from servicekit.errors import ErrorResponse

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
Harness = Any  # the conftest fixture's class (test modules cannot import conftest)


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


async def test_paying_a_pending_booking_succeeds_and_publishes_payment_completed(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user, amount=2400)
    response = await harness.pay(user, booking["id"], key=new_key(), card_number="4242 4242 4242 4242")
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    payment = response.json()
    assert payment["status"] == "succeeded" and payment["amount"] == 2400 and payment["currency"] == "USD"
    assert (payment["card_brand"], payment["card_last4"]) == ("visa", "4242")
    assert GOOD_CARD not in response.text
    assert await harness.charges(booking["id"]) == 1
    events = await harness.delivered("payment.completed", booking["id"])
    assert events[0]["data"] == {
        "payment_id": payment["id"],
        "booking_id": booking["id"],
        "user_id": str(user.user_id),
        "user_email": user.email,
        "amount": 2400,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_last4": "4242",
    }
    assert events[0]["producer"] == "payment-service" and events[0]["_delivery_mode"] == 2
    fetched = await harness.client.get(f"/payments/{payment['id']}", headers=user.headers)
    assert fetched.status_code == 200 and fetched.json() == payment


async def test_no_card_number_is_the_default_success(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    response = await harness.pay(user, booking["id"], payment_method="e_wallet")
    assert response.status_code == 201, response.text
    assert response.json()["card_last4"] is None and response.json()["payment_method"] == "e_wallet"


async def test_same_key_same_body_replays_the_first_answer_from_redis_or_postgres(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    first = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    again = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    redis, prefix = harness.runtime.redis, harness.settings.redis_prefix
    cached = await redis.keys(f"{prefix}payment:idempotency:{user.user_id}:*")
    assert len(cached) == 1 and 86_000 < await redis.ttl(cached[0]) <= 86_400
    await redis.delete(*cached)  # Redis lost it: PostgreSQL still answers
    from_db = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    assert from_db.status_code == 201 and from_db.json() == first.json()
    assert from_db.headers["Idempotent-Replayed"] == "true"
    assert await harness.charges(booking["id"]) == 1
    assert len(await harness.payments_of(booking["id"])) == 1


async def test_without_a_key_the_booking_is_the_key(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    first = await harness.pay(user, booking["id"])
    again = await harness.pay(user, booking["id"])
    assert first.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    payments = await harness.payments_of(booking["id"])
    assert [p.idempotency_key for p in payments] == [f"payment:{booking['id']}"]


async def test_same_key_with_another_body_is_422(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    assert (await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)).status_code == 201
    changed = await harness.pay(user, booking["id"], key=key, payment_method="debit_card")
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    other_booking = harness.desk.add(user)
    assert (await harness.pay(user, other_booking["id"], key=key)).status_code == 422
    assert await harness.charges(other_booking["id"]) == 0


async def test_same_key_while_the_first_is_in_flight_is_409(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    gate = harness.desk.gates[booking["id"]] = asyncio.Event()
    key = new_key()
    first = asyncio.create_task(harness.pay(user, booking["id"], key=key))
    try:
        await _wait_for_claim(harness, user, key)
        second = await harness.pay(user, booking["id"], key=key)
        assert second.status_code == 409 and second.json()["error"]["code"] == "idempotency_busy"
        lease = harness.settings.idempotency_lock_seconds  # it has finished or may be resumed by then
        assert lease - 5 <= int(second.headers["Retry-After"]) <= lease
    finally:
        gate.set()
    assert (await first).status_code == 201
    assert (await harness.pay(user, booking["id"], key=key)).headers["Idempotent-Replayed"] == "true"


async def test_twenty_concurrent_requests_with_one_key_charge_once(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    answers = await asyncio.gather(
        *(harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD) for _ in range(20))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    created = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(created) == 1
    busy = {a.json()["error"]["code"] for a in answers if a.status_code == 409}
    assert busy <= {"idempotency_busy"}
    assert await harness.charges(booking["id"]) == 1
    assert len(await harness.payments_of(booking["id"])) == 1


async def test_a_paid_booking_is_not_charged_again_under_another_key(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    assert (await harness.pay(user, booking["id"], key=new_key())).status_code == 201
    # booking-service has not consumed payment.completed yet: the booking still says pending
    second = await harness.pay(user, booking["id"], key=new_key(), card_number=GOOD_CARD)
    assert second.status_code == 409 and second.json()["error"]["code"] == "booking_already_paid"
    booking["status"] = "confirmed"
    third = await harness.pay(user, booking["id"], key=new_key())
    assert third.status_code == 409 and third.json()["error"]["code"] == "booking_not_pending"
    assert "Retry-After" not in second.headers and "Retry-After" not in third.headers  # final
    assert await harness.charges(booking["id"]) == 1
    assert len(await harness.payments_of(booking["id"])) == 1


async def test_keys_are_scoped_to_their_user(harness: Harness) -> None:
    alice, bob = harness.caller(), harness.caller()
    key = new_key()
    alices = harness.desk.add(alice)
    paid = await harness.pay(alice, alices["id"], key=key)
    assert paid.status_code == 201
    stolen = await harness.pay(bob, alices["id"], key=key)  # Bob replays Alice's key and body
    assert stolen.status_code == 404 and "Idempotent-Replayed" not in stolen.headers
    bobs = harness.desk.add(bob)
    own = await harness.pay(bob, bobs["id"], key=key)
    assert own.status_code == 201 and own.json()["id"] != paid.json()["id"]
    peek = await harness.client.get(f"/payments/{paid.json()['id']}", headers=bob.headers)
    assert peek.status_code == 404


async def test_amount_from_an_older_client_must_match_the_booking(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user, amount=1800)
    wrong = await harness.pay(user, booking["id"], key=new_key(), amount=1)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "amount_mismatch"
    beyond = await harness.pay(user, booking["id"], key=new_key(), amount=10**30)  # no amount is that big
    assert beyond.status_code == 422, beyond.text
    right = await harness.pay(user, booking["id"], key=new_key(), amount=1800)
    assert right.status_code == 201 and right.json()["amount"] == 1800


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"status": "confirmed"}, 409, "booking_not_pending"),
        ({"status": "cancelled"}, 409, "booking_not_pending"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, 409, "booking_expired"),
        ({"user_id": str(uuid.uuid4())}, 404, "booking_not_found"),
    ],
)
async def test_a_booking_that_cannot_be_paid_is_refused_and_the_key_freed(
    harness: Harness, change: dict[str, str], status: int, code: str
) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    original = dict(booking)
    booking.update(change)
    key = new_key()
    refused = await harness.pay(user, booking["id"], key=key)
    assert refused.status_code == status and refused.json()["error"]["code"] == code
    assert await harness.charges(booking["id"]) == 0 and await harness.payments_of(booking["id"]) == []
    booking.update(original)  # nothing was charged, so the same key may try again
    assert (await harness.pay(user, booking["id"], key=key)).status_code == 201


async def test_unknown_booking_is_404(harness: Harness) -> None:
    user = harness.caller()
    response = await harness.pay(user, str(uuid.uuid4()), key=new_key())
    assert response.status_code == 404 and response.json()["error"]["code"] == "booking_not_found"


@pytest.mark.parametrize(
    ("card", "reason"),
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")],
)
async def test_a_declined_card_is_402_a_failed_payment_and_payment_failed(
    harness: Harness, card: str, reason: str
) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    declined = await harness.pay(user, booking["id"], key=key, card_number=card)
    assert declined.status_code == 402, declined.text
    error = declined.json()["error"]
    assert error["code"] == "payment_declined" and error["details"]["reason"] == reason
    assert card not in declined.text
    [payment] = await harness.payments_of(booking["id"])
    assert payment.status == "failed" and payment.failure_reason == reason and payment.card_last4 == card[-4:]
    events = await harness.delivered("payment.failed", booking["id"])
    assert events[0]["data"]["reason"] == reason and events[0]["data"]["payment_id"] == str(payment.id)
    replay = await harness.pay(user, booking["id"], key=key, card_number=card)
    assert replay.status_code == 402 and replay.json() == declined.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await harness.outbox_events("payment.completed", booking["id"]) == []


async def test_a_provider_that_stays_down_is_503_and_nothing_is_charged(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    down = await harness.pay(user, booking["id"], key=key, card_number="4000000000000119")
    assert down.status_code == 503 and down.json()["error"]["code"] == "provider_unavailable"
    assert down.headers["Retry-After"] == "1"
    [payment] = await harness.payments_of(booking["id"])
    assert (payment.status, payment.failure_reason) == ("failed", "provider_unavailable")
    assert await harness.charges(booking["id"]) == 0
    # the booking stays payable: no payment.failed (booking-service would fail the booking)
    assert await harness.outbox_events("payment.failed", booking["id"]) == []
    retried = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    assert retried.status_code == 201 and retried.json()["status"] == "succeeded"
    assert await harness.charges(booking["id"]) == 1


async def test_a_flaky_provider_is_retried_with_back_off_and_charges_once(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    response = await harness.pay(user, booking["id"], key=new_key(), card_number="4000000000003220")
    assert response.status_code == 201 and response.json()["status"] == "succeeded"
    assert await harness.charges(booking["id"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"card_number": "4242424242424241"},
        {"card_number": "42424242abcd4242"},
        {"payment_method": "cash"},
        {"amount": -5},
        {"booking_id": "not-a-uuid"},
    ],
)
async def test_bad_input_is_422_and_never_echoes_the_card(harness: Harness, body: dict[str, Any]) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    payload = {"booking_id": booking["id"], "payment_method": "credit_card", **body}
    headers = {**user.headers, "Idempotency-Key": new_key()}
    response = await harness.client.post("/process", json=payload, headers=headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert "4242424242424241" not in response.text


async def test_a_bad_idempotency_key_is_422_and_no_token_is_401(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    assert (await harness.pay(user, booking["id"], key="x" * 256)).status_code == 422
    anonymous = await harness.client.post(
        "/process", json={"booking_id": booking["id"], "payment_method": "credit_card"}
    )
    assert anonymous.status_code == 401


async def _wait_for_claim(harness: Harness, user: Any, key: str) -> None:
    from payment_service import repository
    from servicekit.testing import wait_until

    async def claimed() -> bool:
        async with harness.runtime.sessionmaker() as session, session.begin():
            return await repository.get_idempotency_record(session, user.user_id, key) is not None

    await wait_until(claimed, within=5, what="the first request to claim its key")


async def test_a_retry_after_a_crash_resumes_the_payment_and_never_charges_twice(harness: Harness) -> None:
    from datetime import UTC, datetime, timedelta

    from payment_service import repository
    from payment_service.models import Payment
    from payment_service.providers import ChargeRequest
    from payment_service.schemas import PaymentRequest

    user = harness.caller()
    booking = harness.desk.add(user, amount=3100)
    key, payments = new_key(), harness.runtime[PAYING]
    body = PaymentRequest(booking_id=booking["id"], payment_method="credit_card", card_number=GOOD_CARD)
    now = datetime.now(UTC)
    # the state a crash leaves behind: key claimed (lease lapsed), payment pending, card charged
    async with harness.runtime.sessionmaker() as session, session.begin():
        payment = await repository.add_payment(session, _pending(Payment, user, booking, key))
        record = {
            "user_id": user.user_id,
            "key": key,
            "fingerprint": payments.idempotency.fingerprint(body),
            "state": "in_flight",
            "payment_id": payment.id,
            "locked_until": now - timedelta(seconds=1),
            "expires_at": now + timedelta(days=1),
        }
        await repository.insert_idempotency_record(session, record)
    charge = ChargeRequest(f"payment:{payment.id}", 3100, "USD", booking["id"], GOOD_CARD)
    assert (await payments.provider.charge(charge)).approved
    retried = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == str(payment.id) and retried.json()["status"] == "succeeded"
    assert await harness.charges(booking["id"]) == 1
    assert len(await harness.payments_of(booking["id"])) == 1
    assert len(await harness.outbox_events("payment.completed", booking["id"])) == 1


async def test_a_database_error_before_the_charge_releases_the_key_for_a_retry(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from payment_service import repository

    async def connection_lost(*_: Any) -> Any:
        raise OperationalError("INSERT INTO payment.payments ...", {}, ConnectionResetError("lost"))

    user = harness.caller()
    booking = harness.desk.add(user)
    key = new_key()
    with monkeypatch.context() as patched:
        patched.setattr(repository, "start_payment_of_key", connection_lost)
        failed = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1", failed.text
    assert await harness.charges(booking["id"]) == 0
    retried = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)  # not idempotency_busy
    assert retried.status_code == 201, retried.text
    assert await harness.charges(booking["id"]) == 1


async def test_a_booking_being_paid_is_409_with_retry_after_until_it_is_resolved(harness: Harness) -> None:
    from payment_service import repository
    from payment_service.models import Payment

    user = harness.caller()
    booking = harness.desk.add(user)
    async with harness.runtime.sessionmaker() as session, session.begin():  # another key is paying it
        payment = await repository.add_payment(session, _pending(Payment, user, booking, new_key()))
    paying = await harness.pay(user, booking["id"], key=new_key())
    assert paying.status_code == 409 and paying.json()["error"]["code"] == "booking_already_paid"
    refund = await harness.client.post(f"/payments/{payment.id}/refund", headers=user.headers)
    assert refund.status_code == 409 and refund.json()["error"]["code"] == "payment_not_refundable"
    waits = [int(paying.headers["Retry-After"]), int(refund.headers["Retry-After"])]
    # finished by its request, or resolved by the reconciler after its lease and one pass
    settings = harness.settings
    resolved_within = settings.idempotency_lock_seconds + settings.reconciler_interval_seconds
    assert all(resolved_within - 5 <= wait <= resolved_within for wait in waits), waits


def _pending(model: Any, user: Any, booking: dict[str, Any], key: str) -> Any:
    return model(
        user_id=user.user_id,
        user_email=user.email,
        booking_id=uuid.UUID(booking["id"]),
        amount=booking["total_amount"],
        currency="USD",
        status="pending",
        payment_method="credit_card",
        card_brand="visa",
        card_last4="4242",
        idempotency_key=key,
        provider="simulated",
    )


async def test_payments_list_is_own_and_paginated(harness: Harness) -> None:
    user, other = harness.caller(), harness.caller()
    for _ in range(3):
        assert (await harness.pay(user, harness.desk.add(user)["id"])).status_code == 201
    assert (await harness.pay(other, harness.desk.add(other)["id"])).status_code == 201
    page = (await harness.client.get("/payments?limit=2", headers=user.headers)).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    rest = (await harness.client.get("/payments?limit=2&offset=2", headers=user.headers)).json()
    assert len(rest["items"]) == 1
    ids = {p["id"] for p in page["items"] + rest["items"]}
    assert len(ids) == 3 and all(p["user_id"] == str(user.user_id) for p in page["items"] + rest["items"])
    assert (await harness.client.get("/payments?limit=0", headers=user.headers)).status_code == 422


async def test_business_metrics_are_exposed(harness: Harness) -> None:
    user = harness.caller()
    booking = harness.desk.add(user)
    await harness.pay(user, booking["id"])
    await harness.pay(user, booking["id"])
    text = (await harness.client.get("/metrics")).text
    assert 'payments_total{result="succeeded"}' in text
    assert "idempotent_replays_total" in text and "refunds_total" in text


async def test_process_answers_the_bodies_its_openapi_documents(harness: Harness) -> None:
    """/process answers what it stored under the key itself (not through a response model):
    a payment, or a decline in the one error shape with this request's id."""
    spec = (await harness.client.get("/openapi.json")).json()["paths"]["/process"]["post"]["responses"]
    assert spec["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/PaymentOut")
    assert spec["402"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    user = harness.caller()
    paid = await harness.pay(user, harness.desk.add(user)["id"], key=new_key(), card_number=GOOD_CARD)
    assert paid.status_code == 201 and PaymentOut.model_validate(paid.json()).status == "succeeded"
    declined = await harness.pay(user, harness.desk.add(user)["id"], key=new_key(), card_number=DECLINED_CARD)
    assert declined.status_code == 402
    error = ErrorResponse.model_validate(declined.json()).error
    assert set(declined.json()["error"]) == {"code", "message", "request_id", "details"}
    assert error.code == "payment_declined" and error.request_id == declined.headers["X-Request-ID"]
