"""The booking state machine, driven by the user, the expiry sweeper and payment events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from prometheus_client import REGISTRY

from booking_service.config import BookingSettings
from servicekit.testing import RabbitSpy, wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]
Events = Callable[[str], Awaitable[list[dict[str, Any]]]]
Probe = Callable[[dict[str, Any]], Awaitable[bool]]

CONTRACT_KEYS = {
    "booking.created": {
        "booking_id",
        "user_id",
        "user_email",
        "showtime_id",
        "seats",
        "total_amount",
        "currency",
        "expires_at",
    },
    "booking.confirmed": {
        "booking_id",
        "user_id",
        "user_email",
        "showtime_id",
        "movie_title",
        "theater_name",
        "theater_address",
        "auditorium_name",
        "starts_at",
        "time_zone",
        "seats",
        "total_amount",
        "currency",
        "payment_id",
        "tickets",
    },
    "booking.cancelled": {
        "booking_id",
        "user_id",
        "user_email",
        "showtime_id",
        "seats",
        "total_amount",
        "currency",
        "reason",
        "refund_required",
        "payment_id",
    },
    "booking.expired": {
        "booking_id",
        "user_id",
        "user_email",
        "showtime_id",
        "seats",
        "movie_title",
        "starts_at",
        "time_zone",
    },
}


async def _booked(
    book: Builder, showtime: dict[str, Any], seats: list[str], headers: dict[str, str]
) -> dict[str, Any]:
    response = await book(showtime, seats, headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _status_probe(
    client: httpx.AsyncClient, booking: dict[str, Any], headers: dict[str, str], status: str
) -> Any:
    async def probe() -> bool:
        response = await client.get(f"/bookings/{booking['id']}", headers=headers)
        return bool(response.json()["status"] == status)

    return probe


def _duplicates_seen() -> float:
    labels = {"service": "booking-service", "event_type": "payment.completed", "outcome": "duplicate"}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


async def test_payment_completed_confirms_and_the_events_carry_the_contract_payloads(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    spy: RabbitSpy,
) -> None:
    headers = user_headers()
    booking = await _booked(book, await make_showtime(), ["A1", "A2"], headers)
    payment = await publish_payment("payment.completed", booking)
    await wait_until(_status_probe(client, booking, headers, "confirmed"), what="confirmed")

    def mine(event_type: str) -> list[dict[str, Any]]:
        return [m for m in spy.of_type(event_type) if m["data"]["booking_id"] == booking["id"]]

    async def published() -> bool:
        return bool(mine("booking.confirmed"))

    await wait_until(published, what="booking.confirmed published")
    created, confirmed = mine("booking.created")[0], mine("booking.confirmed")[0]
    assert set(created["data"]) == CONTRACT_KEYS["booking.created"]
    assert set(confirmed["data"]) == CONTRACT_KEYS["booking.confirmed"]
    assert confirmed["data"]["payment_id"] == payment["data"]["payment_id"]
    assert confirmed["data"]["total_amount"] == 2400 and confirmed["data"]["seats"] == ["A1", "A2"]
    assert confirmed["data"]["time_zone"] == "Asia/Ho_Chi_Minh", "the theater's, for local time in mails"
    assert confirmed["data"]["theater_address"] == "12 Trang Tien, Hoan Kiem", "for the mail's calendar entry"
    issued = confirmed["data"]["tickets"]
    assert [t["seat"] for t in issued] == ["A1", "A2"] and len({t["code"] for t in issued}) == 2
    listed = (await client.get(f"/bookings/{booking['id']}/tickets", headers=headers)).json()
    assert [(t["code"], t["seat"]) for t in listed] == [(t["code"], t["seat"]) for t in issued]
    assert confirmed["producer"] == "booking-service" and confirmed["_delivery_mode"] == 2


async def test_duplicate_and_late_payment_events_do_not_change_the_outcome(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
    spy: RabbitSpy,
) -> None:
    headers = user_headers()
    booking = await _booked(book, await make_showtime(), ["B1"], headers)
    payment = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(payment), what="payment.completed handled")
    duplicates_before = _duplicates_seen()
    await spy.publish("payment.completed", payment)  # the very same event again

    async def duplicate_skipped() -> bool:
        return _duplicates_seen() > duplicates_before

    await wait_until(duplicate_skipped, what="the duplicate skipped")
    same_payment = await publish_payment(
        "payment.completed", booking, payment_id=payment["data"]["payment_id"]
    )
    late_failure = await publish_payment("payment.failed", booking, reason="card_declined")
    for event in (same_payment, late_failure):
        await wait_until(lambda e=event: consumed(e), what=f"{event['event_type']} handled")
    assert _types(await outbox_events(booking["id"])) == ["booking.created", "booking.confirmed"]
    current = (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()
    assert current["status"] == "confirmed" and current["payment_id"] == payment["data"]["payment_id"]


async def test_a_decline_that_is_not_the_last_keeps_the_booking_payable_and_a_success_confirms_it(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    booking = await _booked(book, showtime, ["C3"], headers)
    declined = await publish_payment("payment.failed", booking, reason="card_declined", final=False)
    await wait_until(lambda: consumed(declined), what="payment.failed handled")
    assert (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()["status"] == "pending"
    assert (await book(showtime, ["C3"])).status_code == 409, "a payable booking keeps its seats"
    paid = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(paid), what="payment.completed handled")
    assert _types(await outbox_events(booking["id"])) == ["booking.created", "booking.confirmed"]
    assert (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()["status"] == "confirmed"


async def test_the_last_decline_fails_the_booking_and_frees_its_seats_and_a_late_success_says_nothing(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    booking = await _booked(book, showtime, ["C1"], headers)
    failed = await publish_payment("payment.failed", booking, reason="card_declined", final=True)
    await wait_until(lambda: consumed(failed), what="payment.failed handled")
    assert (await book(showtime, ["C1"])).status_code == 201, "a failed booking frees its seats"
    late = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(late), what="late payment.completed handled")
    events = await outbox_events(booking["id"])
    assert _types(events) == ["booking.created", "booking.cancelled"], "one end, one event"
    first = events[1]["data"]
    assert (first["reason"], first["refund_required"]) == ("payment_failed", False)
    assert (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()["status"] == "failed"


async def test_a_payment_that_lands_on_a_booking_cancelled_meanwhile_is_not_a_second_cancellation(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    booking = await _booked(book, showtime, ["C5"], headers)
    response = await client.post(f"/bookings/{booking['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    late = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(late), what="payment.completed handled")
    events = await outbox_events(booking["id"])
    assert _types(events) == ["booking.created", "booking.cancelled"], "a booking is cancelled once"
    assert events[1]["data"]["reason"] == "user_cancelled"
    current = (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()
    assert (current["status"], current["payment_id"]) == ("cancelled", None)


async def test_cancelling_a_pending_booking_frees_its_seats_at_once_and_is_idempotent(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    outbox_events: Events,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    booking = await _booked(book, showtime, ["D1", "D2"], headers)
    for _ in range(2):
        response = await client.post(f"/bookings/{booking['id']}/cancel", headers=headers)
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert (await book(showtime, ["D2"])).status_code == 201
    events = await outbox_events(booking["id"])
    assert _types(events) == ["booking.created", "booking.cancelled"]
    cancelled = events[1]["data"]
    assert set(cancelled) == CONTRACT_KEYS["booking.cancelled"]
    assert (cancelled["reason"], cancelled["refund_required"], cancelled["payment_id"]) == (
        "user_cancelled",
        False,
        None,
    )


async def test_cancelling_a_confirmed_booking_asks_for_a_refund_once(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    booking = await _booked(book, showtime, ["E1"], headers)
    payment = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(payment), what="payment.completed handled")
    response = await client.post(f"/bookings/{booking['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    refunded = await publish_payment("payment.refunded", booking, payment_id=payment["data"]["payment_id"])
    await wait_until(lambda: consumed(refunded), what="payment.refunded handled")
    events = await outbox_events(booking["id"])
    assert _types(events) == ["booking.created", "booking.confirmed", "booking.cancelled"]
    data = events[2]["data"]
    assert (data["refund_required"], data["payment_id"]) == (True, payment["data"]["payment_id"])
    assert (await book(showtime, ["E1"])).status_code == 201


async def test_a_refund_made_at_payment_cancels_the_confirmed_booking_with_its_reason(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    for seat, refund_reason, cancel_reason in (
        ("F1", "requested_by_customer", "refund_requested"),
        ("F2", "requested_by_admin", "refunded_by_admin"),
    ):
        booking = await _booked(book, showtime, [seat], headers)
        payment = await publish_payment("payment.completed", booking)
        await wait_until(lambda p=payment: consumed(p), what="payment.completed handled")
        refunded = await publish_payment(
            "payment.refunded", booking, payment_id=payment["data"]["payment_id"], reason=refund_reason
        )
        await wait_until(lambda r=refunded: consumed(r), what="payment.refunded handled")
        current = (await client.get(f"/bookings/{booking['id']}", headers=headers)).json()
        assert (current["status"], current["cancel_reason"]) == ("cancelled", cancel_reason)
        cancelled = (await outbox_events(booking["id"]))[-1]
        assert cancelled["event_type"] == "booking.cancelled"
        assert (cancelled["data"]["reason"], cancelled["data"]["refund_required"]) == (cancel_reason, False)
        assert (await book(showtime, [seat])).status_code == 201


async def test_an_unpaid_hold_expires_its_seats_return_and_a_late_payment_changes_nothing(
    booking_client: Callable[[BookingSettings], AbstractAsyncContextManager[httpx.AsyncClient]],
    settings_with: Callable[..., BookingSettings],
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    publish_payment: Builder,
    outbox_events: Events,
    consumed: Probe,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    async with booking_client(settings_with(hold_ttl_seconds=1)) as fast:
        response = await book(showtime, ["A9", "A10"], headers, via=fast)
        assert response.status_code == 201, response.text
        booking = response.json()
        await wait_until(_status_probe(fast, booking, headers, "expired"), within=10, what="expired")
        assert (await book(showtime, ["A10"])).status_code == 201, "expired seats are free again"
        cancel = await fast.post(f"/bookings/{booking['id']}/cancel", headers=headers)
        assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "booking_not_cancellable"
    late = await publish_payment("payment.completed", booking)
    await wait_until(lambda: consumed(late), what="late payment.completed handled")
    events = await outbox_events(booking["id"])
    assert _types(events) == ["booking.created", "booking.expired"], "payment refunds on booking.expired"
    assert set(events[1]["data"]) == CONTRACT_KEYS["booking.expired"]
    assert events[1]["data"]["time_zone"] == showtime["time_zone"]
