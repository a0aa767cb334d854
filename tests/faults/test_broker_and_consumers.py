"""RabbitMQ unreachable mid-flow, and the notification service killed before it acks."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from faultkit import EXCHANGE, RABBIT_URL, Stack, User

from servicekit.testing import RabbitSpy, wait_until

Flow = dict[str, Any]


@pytest.fixture
async def spy() -> AsyncIterator[RabbitSpy]:
    """Every event of this run, seen straight on the broker (not through the cut proxy)."""
    async with RabbitSpy(RABBIT_URL, EXCHANGE, ["#"]) as rabbit:
        yield rabbit


async def book_and_pay(stack: Stack, user: User, showtime: dict[str, Any], seat: str) -> Flow:
    async with httpx.AsyncClient(timeout=10) as client:
        body = {"showtime_id": showtime["id"], "seat_ids": [seat]}
        booked = await client.post(f"{stack.url('booking')}/book", json=body, headers=user.headers)
        assert booked.status_code == 201, booked.text
        pay = {"booking_id": booked.json()["id"], "payment_method": "credit_card"}
        headers = {**user.headers, "Idempotency-Key": f"faults-{uuid.uuid4().hex}"}
        paid = await client.post(f"{stack.url('payment')}/process", json=pay, headers=headers)
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "succeeded"
    return {"user": user, "booking": booked.json(), "payment": paid.json()}


async def booking_status(stack: Stack, flow: Flow) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"{stack.url('booking')}/bookings/{flow['booking']['id']}"
        return str((await client.get(url, headers=flow["user"].headers)).json()["status"])


async def outboxes_empty(stack: Stack) -> bool:
    backlogs = [await stack.metric(name, "outbox_backlog_events") for name in ("booking", "payment")]
    return not any(backlogs)


async def test_rabbitmq_unreachable_mid_flow_commits_and_delivers_every_event_once(
    stack: Stack, new_user: Callable[[], User], spy: RabbitSpy
) -> None:
    showtime = await stack.showtime()
    mailbox = stack.background.mailbox
    await stack.background.cut(stack.background.rabbit)
    flows = [await book_and_pay(stack, new_user(), showtime, seat) for seat in ("A1", "A2", "A3")]
    assert {await booking_status(stack, flow) for flow in flows} == {"pending"}, "confirmed only by event"
    assert not [m for m in spy.messages if m["data"].get("booking_id") in _ids(flows)]
    await stack.background.restore(stack.background.rabbit)

    async def all_confirmed_and_mailed() -> bool:
        statuses = {await booking_status(stack, flow) for flow in flows}
        return statuses == {"confirmed"} and all(mailbox.to(f["user"].email) for f in flows)

    await wait_until(all_confirmed_and_mailed, within=45, interval=0.2, what="confirmations after the outage")
    await wait_until(lambda: outboxes_empty(stack), within=15, what="both outboxes published")
    ours = [m for m in spy.messages if m["data"].get("booking_id") in _ids(flows)]
    per_event_id = Counter(m["event_id"] for m in ours)
    assert max(per_event_id.values()) == 1, f"an event was published twice: {per_event_id}"
    kinds = Counter((m["event_type"], m["data"]["booking_id"]) for m in ours)
    for flow in flows:
        for kind in ("booking.created", "payment.completed", "booking.confirmed"):
            assert kinds[(kind, flow["booking"]["id"])] == 1, (kind, kinds)
    await _assert_one_tickets_mail_each(stack, flows)


async def _assert_one_tickets_mail_each(stack: Stack, flows: list[Flow]) -> None:
    async def sent(flow: Flow) -> bool:
        async with httpx.AsyncClient(timeout=5) as client:
            url = f"{stack.url('notification')}/notifications"
            items = (await client.get(url, headers=flow["user"].headers)).json()["items"]
        return [item["status"] for item in items] == ["sent"]

    for flow in flows:
        await wait_until(lambda flow=flow: sent(flow), within=15, what="the tickets notification sent")
        mails = stack.background.mailbox.to(flow["user"].email)
        assert len(mails) == 1, f"{len(mails)} mails to {flow['user'].email}"


def _ids(flows: list[Flow]) -> set[str]:
    return {flow["booking"]["id"] for flow in flows}


async def test_notification_killed_before_acking_the_event_is_redelivered_and_mailed_once(
    stack: Stack, new_user: Callable[[], User]
) -> None:
    showtime = await stack.showtime()
    mailbox, notification = stack.background.mailbox, stack.services["notification"]
    user = new_user()
    mailbox.gate.clear()  # the SMTP server holds the tickets mail: the consumer is mid-delivery
    flow = await book_and_pay(stack, user, showtime, "C1")

    async def held() -> bool:
        return user.email in mailbox.held

    await wait_until(held, within=30, interval=0.1, what="the tickets mail in flight")
    notification.kill()  # SIGKILL: no ack, no clean shutdown
    await asyncio.to_thread(notification.process.wait, 10)  # type: ignore[union-attr]
    mailbox.gate.set()
    assert mailbox.to(user.email) == [], "the interrupted mail was not delivered"
    notification.start()
    await notification.wait_ready()
    await _assert_one_tickets_mail_each(stack, [flow])
