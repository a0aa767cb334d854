"""Own notifications only, preferences and SMS, and mails kept while the service was down."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from notification_service.main import create_app
from servicekit.testing import RabbitSpy, wait_until


async def test_a_user_sees_only_their_own_notifications(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any
) -> None:
    ann, bob = new_user(), new_user()
    for event_type in ("user.registered", "booking.confirmed", "booking.expired"):
        await publish(event_type, ann)
    await publish("booking.confirmed", bob)
    await mails(ann.email, count=3)
    await mails(bob.email)

    async def listed(user: Any, count: int) -> dict[str, Any] | None:
        page = (await client.get("/notifications", headers=user.headers)).json()
        return page if page["total"] == count and all(i["status"] == "sent" for i in page["items"]) else None

    page = await wait_until(lambda: listed(ann, 3), what="ann's three notifications sent")
    assert {item["recipient"] for item in page["items"]} == {ann.email}
    bobs = await wait_until(lambda: listed(bob, 1), what="bob's notification sent")
    bob_id = bobs["items"][0]["id"]
    assert (await client.get(f"/notifications/{bob_id}", headers=ann.headers)).status_code == 404
    own = await client.get(f"/notifications/{bob_id}", headers=bob.headers)
    assert own.status_code == 200 and own.json()["template"] == "tickets"
    second = (await client.get("/notifications?limit=2&offset=2", headers=ann.headers)).json()
    assert len(second["items"]) == 1 and second["total"] == 3


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/notifications?limit=0", 422),
        ("/notifications?limit=101", 422),
        ("/notifications?offset=-1", 422),
        ("/notifications/not-a-uuid", 422),
        (f"/notifications/{uuid.uuid4()}", 404),
    ],
)
async def test_bad_queries_are_4xx(client: httpx.AsyncClient, new_user: Any, path: str, status: int) -> None:
    response = await client.get(path, headers=new_user().headers)
    assert response.status_code == status and "error" in response.json()


async def test_notifications_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/notifications")).status_code == 401
    assert (await client.get("/preferences")).status_code == 401


async def test_preferences_default_to_email_and_validate(client: httpx.AsyncClient, new_user: Any) -> None:
    user = new_user()
    assert (await client.get("/preferences", headers=user.headers)).json() == {
        "email": True,
        "sms": False,
        "phone_number": None,
    }
    for body in ({"email": False, "sms": False}, {"sms": True}, {"sms": True, "phone_number": "call me"}):
        response = await client.put("/preferences", json=body, headers=user.headers)
        assert response.status_code == 422, body


async def test_registration_phone_lets_the_user_switch_to_sms(
    client: httpx.AsyncClient, new_user: Any, publish: Any, processed: Any
) -> None:
    user = new_user()
    event = await publish("user.registered", user, phone_number="+84 912 345 678")
    await wait_until(lambda: processed(event["event_id"]), what="registration committed")
    response = await client.put("/preferences", json={"email": False, "sms": True}, headers=user.headers)
    assert response.json() == {"email": False, "sms": True, "phone_number": "+84 912 345 678"}


class SmsGateway:
    """A real HTTP endpoint standing in for an SMS provider's webhook; records what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.authorization: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        lowered = {k.lower(): v for k, v in headers.items()}
        body = await reader.readexactly(int(lowered.get("content-length", "0")))
        self.received.append(json.loads(body))
        self.authorization.append(lowered.get("authorization", ""))
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def sms_gateway() -> AsyncIterator[tuple[SmsGateway, int]]:
    gateway = SmsGateway()
    server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
    yield gateway, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_sms_goes_through_the_webhook_provider_when_chosen(
    isolated_settings: Any,
    running: Any,
    new_user: Any,
    make_event: Any,
    mails: Any,
    sms_gateway: Any,
    smtp: Any,
) -> None:
    gateway, port = sms_gateway
    settings = isolated_settings(
        sms_provider="webhook",
        sms_webhook_url=f"http://127.0.0.1:{port}/sms",
        sms_webhook_token="s3",
    )
    user = new_user()
    async with (
        running(create_app(settings)) as client,
        RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy,
    ):
        body = {"email": False, "sms": True, "phone_number": "+15550001234"}
        assert (await client.put("/preferences", json=body, headers=user.headers)).status_code == 200
        expired = make_event("booking.expired", user)
        await spy.publish("booking.expired", expired)
        await wait_until(lambda: _has(gateway.received, 1), what="expiry SMS")
        await spy.publish("booking.confirmed", make_event("booking.confirmed", user))
        await mails(user.email)  # tickets are emailed even to an SMS-only user
        await wait_until(lambda: _has(gateway.received, 2), what="tickets SMS")
    assert [sms["to"] for sms in gateway.received] == ["+15550001234"] * 2
    assert expired["data"]["booking_id"].replace("-", "")[:8].upper() in gateway.received[0]["text"]
    assert gateway.authorization == ["Bearer s3"] * 2 and len(smtp.to(user.email)) == 1


async def _has(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def test_every_mail_arrives_once_after_the_service_was_down(
    isolated_settings: Any, running: Any, new_user: Any, make_event: Any, mails: Any, smtp: Any
) -> None:
    settings = isolated_settings()
    async with running(create_app(settings)):
        pass  # deployed once: its queue exists; now it is stopped
    users = [new_user() for _ in range(3)]
    async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as spy:
        for user in users:
            await spy.publish("booking.confirmed", make_event("booking.confirmed", user))
            await spy.publish("payment.completed", make_event("payment.completed", user))
        async with running(create_app(settings)) as client:
            for user in users:
                [mail] = await mails(user.email)
                assert "Your tickets" in mail.subject
            await wait_until(lambda: _consumed_all(client, users), what="every event handled")
    assert [len(smtp.to(user.email)) for user in users] == [1, 1, 1]


async def _consumed_all(client: httpx.AsyncClient, users: list[Any]) -> bool:
    for user in users:
        page = (await client.get("/notifications", headers=user.headers)).json()
        if page["total"] != 1 or page["items"][0]["status"] != "sent":
            return False
    return True
