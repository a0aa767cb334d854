"""The reconciler: payments left pending past their lease (a killed request) are resolved by
asking the provider under the payment's own key; nothing charged means nothing ever will be."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from payment_service import repository
from payment_service.models import IdempotencyRecord, Payment, ProviderLedgerEntry
from payment_service.providers import (
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    RefundRequest,
    RefundResult,
)
from payment_service.reconciler import reconcile_stale_payments
from payment_service.schemas import PaymentRequest
from payment_service.service import PAYING, charge_request
from servicekit.testing import wait_until

Harness = Any  # the conftest fixture's class (test modules cannot import conftest)
GOOD_CARD, DECLINED_CARD = "4242424242424242", "4000000000000002"


@dataclasses.dataclass
class Stranded:
    """What a request killed after inserting its payment leaves: the payment pending (last
    touched an hour ago) and its key in flight with a lapsed lease."""

    user: Any
    booking: dict[str, Any]
    payment: Payment
    key: str
    card: str | None

    @property
    def booking_id(self) -> str:
        return str(self.booking["id"])


async def strand(
    harness: Harness, card: str | None = GOOD_CARD, charged: bool = False, ago: timedelta = timedelta(hours=1)
) -> Stranded:
    user = harness.caller()
    booking = harness.desk.add(user)
    key, payments = f"key-{uuid.uuid4().hex}", harness.runtime[PAYING]
    body = PaymentRequest(booking_id=booking["id"], payment_method="credit_card", card_number=card)
    touched = datetime.now(UTC) - ago
    lease = timedelta(seconds=harness.settings.idempotency_lock_seconds)
    async with harness.runtime.sessionmaker() as session, session.begin():
        payment = await repository.add_payment(session, _payment(user, booking, key, card, touched))
        record = {
            "user_id": user.user_id,
            "key": key,
            "fingerprint": payments.idempotency.fingerprint(body),
            "state": "in_flight",
            "payment_id": payment.id,
            "locked_until": touched + lease,
            "expires_at": touched + timedelta(days=1),
        }
        await repository.insert_idempotency_record(session, record)
    if charged:  # the provider call had gone through before the crash
        await payments.provider.charge(charge_request(payment, card))
    return Stranded(user, booking, payment, key, card)


def _payment(user: Any, booking: dict[str, Any], key: str, card: str | None, touched: datetime) -> Payment:
    return Payment(
        user_id=user.user_id,
        user_email=user.email,
        booking_id=uuid.UUID(booking["id"]),
        amount=booking["total_amount"],
        currency="USD",
        status="pending",
        payment_method="credit_card",
        card_last4=card[-4:] if card else None,
        idempotency_key=key,
        provider="simulated",
        created_at=touched,
        updated_at=touched,
    )


async def pay_again(harness: Harness, stranded: Stranded, key: str | None = None) -> Any:
    return await harness.pay(
        stranded.user, stranded.booking_id, key=key or stranded.key, card_number=stranded.card
    )


async def reconcile(harness: Harness) -> int:
    return await reconcile_stale_payments(harness.runtime[PAYING])


async def approved_charges(harness: Harness, booking_id: str) -> int:
    async with harness.runtime.sessionmaker() as session:
        stmt = select(ProviderLedgerEntry).where(
            ProviderLedgerEntry.reference == booking_id, ProviderLedgerEntry.operation == "charge"
        )
        return sum(1 for entry in (await session.execute(stmt)).scalars() if entry.approved)


async def key_record(harness: Harness, stranded: Stranded) -> IdempotencyRecord | None:
    async with harness.runtime.sessionmaker() as session:
        return await session.get(IdempotencyRecord, (stranded.user.user_id, stranded.key))


async def test_a_charged_payment_left_pending_succeeds_and_its_key_replays_the_answer(
    harness: Harness,
) -> None:
    stranded = await strand(harness, charged=True)
    # Not "this pass claimed it": the harness's own start-up pass, spawned as it starts, may get
    # there first on a slow machine (CI did once). Either pass is the same code; the outcome is
    # what is under test.
    await reconcile(harness)
    [payment] = await harness.payments_of(stranded.booking_id)
    assert payment.status == "succeeded" and payment.provider_charge_id is not None
    [event] = await harness.outbox_events("payment.completed", stranded.booking_id)
    assert event["data"]["payment_id"] == str(payment.id)
    replay = await pay_again(harness, stranded)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == str(payment.id) and replay.json()["status"] == "succeeded"
    assert await approved_charges(harness, stranded.booking_id) == 1
    await harness.delivered("payment.completed", stranded.booking_id)


async def test_a_declined_charge_left_pending_fails_with_payment_failed(harness: Harness) -> None:
    stranded = await strand(harness, card=DECLINED_CARD, charged=True)
    await reconcile(harness)
    [payment] = await harness.payments_of(stranded.booking_id)
    assert (payment.status, payment.failure_reason) == ("failed", "card_declined")
    [event] = await harness.outbox_events("payment.failed", stranded.booking_id)
    assert event["data"]["reason"] == "card_declined"
    replay = await pay_again(harness, stranded)
    assert replay.status_code == 402 and replay.headers["Idempotent-Replayed"] == "true"


async def test_a_charge_for_a_booking_cancelled_meanwhile_is_refunded(harness: Harness) -> None:
    stranded = await strand(harness, charged=True)
    async with harness.runtime.sessionmaker() as session, session.begin():
        await repository.record_cancelled_booking(session, stranded.payment.booking_id, "expired", True)
    await reconcile(harness)
    [payment] = await harness.payments_of(stranded.booking_id)
    assert payment.status == "refunded" and payment.refund_reason  # the reason is refunds.py's to name
    assert await harness.refunds(payment.provider_charge_id) == 1
    assert len(await harness.outbox_events("payment.refunded", stranded.booking_id)) == 1


async def test_nothing_charged_the_payment_is_abandoned_and_the_booking_payable_again(
    harness: Harness,
) -> None:
    stranded = await strand(harness, charged=False)
    await reconcile(harness)
    [payment] = await harness.payments_of(stranded.booking_id)
    assert (payment.status, payment.failure_reason) == ("failed", "abandoned")
    for kind in ("payment.failed", "payment.completed"):  # not a decline: booking keeps its seats
        assert await harness.outbox_events(kind, stranded.booking_id) == []
    assert await key_record(harness, stranded) is None, "the key is released"
    # the dead request's charge, had it arrived now, is answered the void and takes no money
    late = await harness.runtime[PAYING].provider.charge(charge_request(payment, GOOD_CARD))
    assert late.abandoned and not late.approved
    assert await approved_charges(harness, stranded.booking_id) == 0
    again = await pay_again(harness, stranded)  # the same key starts afresh
    assert again.status_code == 201, again.text
    assert again.json()["id"] != str(payment.id) and "Idempotent-Replayed" not in again.headers
    assert await approved_charges(harness, stranded.booking_id) == 1


async def test_a_retry_after_the_lease_resolves_first_and_never_charges_a_booking_that_ended(
    harness: Harness,
) -> None:
    stranded = await strand(harness, charged=False)  # the request died before the provider call
    async with harness.runtime.sessionmaker() as session, session.begin():
        await repository.record_cancelled_booking(session, stranded.payment.booking_id, "expired", True)
    harness.desk.bookings[stranded.booking_id]["status"] = "expired"
    again = await pay_again(harness, stranded)  # the customer's late retry with the same key
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] in ("booking_not_pending", "booking_expired")
    assert await approved_charges(harness, stranded.booking_id) == 0, "charged, then refunded"
    [payment] = await harness.payments_of(stranded.booking_id)
    assert (payment.status, payment.failure_reason) == ("failed", "abandoned")
    assert await key_record(harness, stranded) is None, "nothing charged: the key may be used again"


async def test_a_retry_after_the_lease_with_nothing_charged_pays_in_a_new_attempt(harness: Harness) -> None:
    stranded = await strand(harness, charged=False)
    again = await pay_again(harness, stranded)
    assert again.status_code == 201, again.text
    payments = await harness.payments_of(stranded.booking_id)
    old, new = sorted(payments, key=lambda payment: payment.id != stranded.payment.id)
    assert (old.status, old.failure_reason) == ("failed", "abandoned")
    assert again.json()["id"] == str(new.id) and new.status == "succeeded"
    assert await approved_charges(harness, stranded.booking_id) == 1
    # the dead request's charge, had it arrived now, is answered the void and takes no money
    late = await harness.runtime[PAYING].provider.charge(charge_request(old, GOOD_CARD))
    assert late.abandoned and await approved_charges(harness, stranded.booking_id) == 1
    replay = await pay_again(harness, stranded)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == str(new.id)


async def test_a_payment_still_within_its_lease_is_left_alone(harness: Harness) -> None:
    stranded = await strand(harness, charged=True, ago=timedelta(seconds=1))  # its request is alive
    await reconcile(harness)
    assert [p.status for p in await harness.payments_of(stranded.booking_id)] == ["pending"]
    async with harness.runtime.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment)
            .where(Payment.id == stranded.payment.id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    await reconcile(harness)
    assert [p.status for p in await harness.payments_of(stranded.booking_id)] == ["succeeded"]


@dataclasses.dataclass
class CountingProvider:
    """The simulated provider, counting resolve_charge calls per key."""

    inner: PaymentProvider
    resolved: Counter[str] = dataclasses.field(default_factory=Counter)
    name: str = "simulated"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        return await self.inner.charge(request)

    async def resolve_charge(self, request: ChargeRequest) -> ChargeResult:
        self.resolved[request.idempotency_key] += 1
        return await self.inner.resolve_charge(request)

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self.inner.refund(request)


async def test_two_replicas_reconciling_at_once_resolve_each_payment_once(harness: Harness) -> None:
    stranded = [await strand(harness, charged=index % 2 == 0) for index in range(8)]
    payments = harness.runtime[PAYING]
    replicas = [dataclasses.replace(payments, provider=CountingProvider(payments.provider)) for _ in range(2)]
    await asyncio.gather(*(reconcile_stale_payments(replica) for replica in replicas))
    for one in stranded:
        key = f"payment:{one.payment.id}"
        assert sum(replica.provider.resolved[key] for replica in replicas) == 1, key
        [payment] = await harness.payments_of(one.booking_id)
        assert payment.status in ("succeeded", "failed")
        assert len(await harness.outbox_events("payment.completed", one.booking_id)) == (
            payment.status == "succeeded"
        )
        assert await approved_charges(harness, one.booking_id) == (payment.status == "succeeded")


@dataclasses.dataclass
class SlowProvider:
    """The simulated provider, holding every charge until ``gate`` is set (a slow request)."""

    inner: PaymentProvider
    gate: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    waiting: int = 0
    name: str = "simulated"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.waiting += 1
        await self.gate.wait()
        return await self.inner.charge(request)

    async def parked(self) -> bool:
        return self.waiting == 1

    async def resolve_charge(self, request: ChargeRequest) -> ChargeResult:
        return await self.inner.resolve_charge(request)

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self.inner.refund(request)


async def test_a_slow_request_given_up_by_the_reconciler_charges_nothing_and_may_retry(
    start_harness: Any,
) -> None:
    async with start_harness(idempotency_lock_seconds=0.5) as harness:
        payments = harness.runtime[PAYING]
        slow = SlowProvider(payments.provider)
        harness.runtime[PAYING] = dataclasses.replace(payments, provider=slow)
        user = harness.caller()
        booking = harness.desk.add(user)
        key = f"key-{uuid.uuid4().hex}"
        request = asyncio.create_task(harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD))
        try:
            await wait_until(slow.parked, what="the request at the provider")

            async def given_up() -> bool:
                await reconcile_stale_payments(payments)
                return [p.failure_reason for p in await harness.payments_of(booking["id"])] == ["abandoned"]

            await wait_until(given_up, within=10, interval=0.2, what="the reconciler to give it up")
        finally:
            slow.gate.set()
        answer = await request
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "payment_abandoned"
        assert answer.headers["Retry-After"] == "1"
        assert await approved_charges(harness, booking["id"]) == 0
        harness.runtime[PAYING] = payments
        again = await harness.pay(user, booking["id"], key=key, card_number=GOOD_CARD)
        assert again.status_code == 201, again.text
        assert await approved_charges(harness, booking["id"]) == 1


async def test_the_reconciler_runs_in_every_replica_in_the_background(start_harness: Any) -> None:
    async with start_harness(idempotency_lock_seconds=0.2, reconciler_interval_seconds=0.1) as harness:
        stranded = await strand(harness, charged=True)

        async def resolved() -> bool:
            return [p.status for p in await harness.payments_of(stranded.booking_id)] == ["succeeded"]

        await wait_until(resolved, within=10, what="the background pass")
        text = (await harness.client.get("/metrics")).text
        assert 'payment_reconciliations_total{outcome="succeeded"}' in text


async def test_a_charge_and_a_resolution_racing_on_one_key_agree(harness: Harness) -> None:
    provider, booking_id = harness.runtime[PAYING].provider, str(uuid.uuid4())
    outcomes = []
    for _ in range(10):
        request = ChargeRequest(f"race:{uuid.uuid4().hex}", 1000, "USD", booking_id, GOOD_CARD)
        charged, resolved = await asyncio.gather(provider.charge(request), provider.resolve_charge(request))
        assert charged == resolved  # one outcome per key: the charge, or the void it is answered
        outcomes.append(charged.approved)
    assert await approved_charges(harness, booking_id) == sum(outcomes)
