"""SMTP connections are kept open between mails, replaced when found dead, and quit at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from notification_service.main import create_app
from servicekit.testing import RabbitSpy, wait_until

Service = Callable[..., Any]
Tickets = Callable[..., Awaitable[tuple[Any, dict[str, Any]]]]


@pytest.fixture
def service(isolated_settings: Any, running: Any) -> Service:
    """``async with service(**settings) as (client, spy)``: an app of its own and a publisher to it."""

    @asynccontextmanager
    async def start(**extra: Any) -> AsyncIterator[tuple[httpx.AsyncClient, RabbitSpy]]:
        settings = isolated_settings(**extra)
        spy = RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, [])
        async with running(create_app(settings)) as client, spy:
            yield client, spy

    return start


@pytest.fixture
def tickets(new_user: Any, make_event: Any, mails: Any) -> Tickets:
    """Publish a booking.confirmed for a new user; return its mail and its notification once sent."""

    async def send(client: httpx.AsyncClient, spy: RabbitSpy) -> tuple[Any, dict[str, Any]]:
        user = new_user()
        await spy.publish("booking.confirmed", make_event("booking.confirmed", user))
        [mail] = await mails(user.email)

        async def sent() -> dict[str, Any] | None:
            rows = (await client.get("/notifications", headers=user.headers)).json()["items"]
            return rows[0] if rows and rows[0]["status"] == "sent" else None

        return mail, await wait_until(sent, what="notification sent")

    return send


def closed(smtp: Any, peer: Any) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return peer not in smtp.open_peers

    return probe


async def test_mails_share_a_few_smtp_connections(
    service: Service, new_user: Any, make_event: Any, mails: Any
) -> None:
    users = [new_user() for _ in range(12)]
    async with service(smtp_pool_size=2) as (_, spy):
        for user in users:
            await spy.publish("booking.confirmed", make_event("booking.confirmed", user))
        delivered = [mail for user in users for mail in await mails(user.email)]
    assert len(delivered) == 12
    assert len({mail.peer for mail in delivered}) <= 2


async def test_connections_stay_open_between_mails_and_are_quit_at_shutdown(
    service: Service, tickets: Any, smtp: Any
) -> None:
    async with service() as (client, spy):
        (first, _), (second, _) = await tickets(client, spy), await tickets(client, spy)
        assert second.peer == first.peer and first.peer in smtp.open_peers
    await wait_until(closed(smtp, first.peer), what="the pooled connection closed")
    assert first.peer in smtp.quit_peers


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    service: Service, tickets: Any, smtp: Any
) -> None:
    async with service(smtp_pool_size=1) as (client, spy):
        first, _ = await tickets(client, spy)
        smtp.hang_up(first.peer)  # as a server's idle timeout does
        await wait_until(closed(smtp, first.peer), what="the idle connection closed")
        second, row = await tickets(client, spy)
        third, _ = await tickets(client, spy)
    assert second.peer != first.peer and third.peer == second.peer
    assert row["attempts"] == 1 and row["last_error"] is None


@pytest.mark.parametrize("hang_up", ["MAIL", "MAIL 421"])
async def test_a_reused_connection_lost_before_data_sends_the_mail_on_a_new_one_at_once(
    service: Service, tickets: Any, smtp: Any, hang_up: str
) -> None:
    """Lost (or closed with 421) at MAIL FROM: the server has no copy, so it is sent again now."""
    async with service(smtp_pool_size=1) as (client, spy):
        first, _ = await tickets(client, spy)
        smtp.hang_up_at(hang_up)
        second, row = await tickets(client, spy)
    assert second.peer != first.peer and len(smtp.to(second.rcpt_tos[0])) == 1
    assert row["attempts"] == 1 and row["last_error"] is None and smtp.hang_ups == []


async def test_a_connection_lost_after_data_is_left_to_the_consumers_retry(
    service: Service, tickets: Any, smtp: Any
) -> None:
    """The server may have taken the mail: no second send on the spot (the event's retry decides)."""
    async with service(smtp_pool_size=1) as (client, spy):
        await tickets(client, spy)
        smtp.hang_up_at("DATA")
        mail, row = await tickets(client, spy)
    assert row["attempts"] == 2 and len(smtp.to(mail.rcpt_tos[0])) == 1 and smtp.hang_ups == []


async def test_an_idle_connection_is_quit_after_smtp_idle_seconds(
    service: Service, tickets: Any, smtp: Any
) -> None:
    async with service(smtp_idle_seconds=0.2) as (client, spy):
        first, _ = await tickets(client, spy)
        await wait_until(closed(smtp, first.peer), what="the idle connection closed")
        second, row = await tickets(client, spy)
    assert first.peer in smtp.quit_peers and second.peer != first.peer and row["attempts"] == 1


async def test_smtp_idle_seconds_zero_quits_after_every_mail(
    service: Service, tickets: Any, smtp: Any
) -> None:
    async with service(smtp_idle_seconds=0) as (client, spy):
        (first, _), (second, _) = await tickets(client, spy), await tickets(client, spy)
    assert first.peer != second.peer and {first.peer, second.peer} <= smtp.quit_peers
