"""Each event gives its documented mail, once, to the right address, with the booking's details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.rendering import CANCEL_REASONS, REFUND_REASONS
from servicekit.testing import wait_until

# event type -> (words in the subject, payload fields that must appear in the plain-text body)
DOCUMENTED_MAILS: dict[str, tuple[str, list[str]]] = {
    "user.registered": ("Welcome to Movie Booking", ["Ann Lee", "moviefan"]),
    "booking.confirmed": (
        "Your tickets",
        ["booking_id", "movie_title", "theater_name", "auditorium_name", "seats", "payment_id"],
    ),
    "booking.cancelled": ("cancelled", ["booking_id", "seats"]),
    "booking.expired": ("seat hold expired", ["booking_id", "seats", "movie_title"]),
    "payment.failed": ("Payment failed", ["booking_id", "payment_id", "reason"]),
    "payment.refunded": ("Refund of 25.00 USD", ["booking_id", "payment_id"]),
}


def _expected_words(data: dict[str, Any], fields: list[str]) -> list[str]:
    words: list[str] = []
    for name in fields:
        value = data.get(name, name)
        words.extend(value if isinstance(value, list) else [str(value)])
    return words


@pytest.mark.parametrize("event_type", list(DOCUMENTED_MAILS))
async def test_event_sends_its_documented_mail_once(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any, processed: Any, event_type: str
) -> None:
    user = new_user()
    event = await publish(event_type, user)
    [mail] = await mails(user.email)
    subject_words, fields = DOCUMENTED_MAILS[event_type]
    assert subject_words in mail.subject and mail.rcpt_tos == [user.email]
    plain, html = mail.part("plain"), mail.part("html")
    for word in _expected_words(event["data"], fields):
        assert word in plain and word in html, (word, plain)
    await wait_until(lambda: processed(event["event_id"]), what="event committed")
    assert len((await client.get("/notifications", headers=user.headers)).json()["items"]) == 1


async def test_tickets_mail_carries_the_booking(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any
) -> None:
    user = new_user()
    event = await publish("booking.confirmed", user, seats=["H7", "H8", "H9"], total_amount=3600)
    [mail] = await mails(user.email)
    plain, data = mail.part("plain"), event["data"]
    reference = data["booking_id"].replace("-", "")[:8].upper()
    assert reference in mail.subject and reference in plain
    assert "H7, H8, H9" in plain and "36.00 USD" in plain and "Dune: Part Two" in plain
    assert "19:30" in plain and mail.message["Message-ID"].endswith("@moviebooking.local>")


@pytest.mark.parametrize(
    ("time_zone", "shown"),
    [("Asia/Ho_Chi_Minh", "02:30 (Asia/Ho_Chi_Minh)"), (None, "19:30 UTC")],
)
async def test_tickets_mail_shows_the_theater_s_local_time_or_utc_for_an_older_event(
    new_user: Any, publish: Any, mails: Any, time_zone: str | None, shown: str
) -> None:
    """booking.confirmed carries the theater's zone; an event from before it did not (the
    test showtime starts at 19:30 UTC, 02:30 the next day in Vietnam)."""
    user = new_user()
    zone = {"time_zone": time_zone} if time_zone else {}
    await publish("booking.confirmed", user, **zone)
    [mail] = await mails(user.email)
    assert shown in mail.subject and shown in mail.part("plain") and shown in mail.part("html")


@pytest.mark.parametrize(
    ("event_type", "reason", "words"),
    [
        ("payment.refunded", "requested_by_admin", REFUND_REASONS["requested_by_admin"]),
        ("payment.refunded", "user_cancelled", REFUND_REASONS["user_cancelled"]),
        ("booking.cancelled", "refunded_by_admin", CANCEL_REASONS["refunded_by_admin"]),
    ],
)
async def test_a_refund_mail_tells_who_refunded(
    new_user: Any, publish: Any, mails: Any, event_type: str, reason: str, words: str
) -> None:
    """An admin's refund is told as the cinema's, a cancellation's as the customer's."""
    user = new_user()
    await publish(event_type, user, reason=reason, refund_required=False)
    [mail] = await mails(user.email)
    assert words in mail.part("plain")


async def test_events_told_by_another_mail_send_nothing(
    client: httpx.AsyncClient, new_user: Any, publish: Any, processed: Any, smtp: Any
) -> None:
    """payment.completed is not even delivered (the tickets mail of booking.confirmed is the
    confirmation); booking.cancelled for a failed payment is told by payment.failed."""
    user = new_user()
    completed = await publish("payment.completed", user)
    told = await publish("booking.cancelled", user, reason="payment_failed", refund_required=False)
    await wait_until(lambda: processed(told["event_id"]), what="event committed")
    assert not await processed(completed["event_id"]), "payment.completed is not subscribed to"
    assert smtp.to(user.email) == []
    assert (await client.get("/notifications", headers=user.headers)).json()["total"] == 0


async def test_same_event_delivered_twice_mails_once(
    client: httpx.AsyncClient, new_user: Any, spy: Any, publish: Any, mails: Any, counter: Any
) -> None:
    user = new_user()
    duplicates = counter(
        "events_consumed_total",
        service="notification-service",
        event_type="booking.confirmed",
        outcome="duplicate",
    )
    event = await publish("booking.confirmed", user)
    await mails(user.email)
    await spy.publish("booking.confirmed", event)

    async def second_delivery_seen() -> bool:
        labels = {
            "service": "notification-service",
            "event_type": "booking.confirmed",
            "outcome": "duplicate",
        }
        return bool(counter("events_consumed_total", **labels) > duplicates)

    await wait_until(second_delivery_seen, what="the redelivery handled")
    assert len(await mails(user.email)) == 1


async def test_redelivery_after_a_crash_between_send_and_commit_mails_once(
    client: httpx.AsyncClient,
    new_user: Any,
    spy: Any,
    publish: Any,
    mails: Any,
    processed: Callable[[str], Awaitable[bool]],
    db: AsyncEngine,
) -> None:
    """The mail went out but the consumer died before its ledger commit: the sent row wins."""
    user = new_user()
    event = await publish("booking.confirmed", user)
    await mails(user.email)
    await wait_until(lambda: processed(event["event_id"]), what="event committed")
    async with db.begin() as conn:
        forget = "DELETE FROM notification.processed_events WHERE event_id = :id"
        await conn.execute(text(forget), {"id": event["event_id"]})
    await spy.publish("booking.confirmed", event)
    await wait_until(lambda: processed(event["event_id"]), what="redelivery committed")
    assert len(await mails(user.email)) == 1
    [row] = (await client.get("/notifications", headers=user.headers)).json()["items"]
    assert row["status"] == "sent" and row["attempts"] == 1


async def test_a_title_in_any_script_arrives_intact_and_the_message_id_is_the_notification(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any
) -> None:
    user, title = new_user(), "Amélie – Ça tourne à Hà Nội 🎬"
    await publish("booking.confirmed", user, movie_title=title)
    [mail] = await mails(user.email)
    assert title in mail.subject and title in mail.part("plain") and title in mail.part("html")
    [row] = (await client.get("/notifications", headers=user.headers)).json()["items"]
    assert mail.message["Message-ID"] == f"<{row['id']}@moviebooking.local>"
    assert row["subject"] == mail.subject
