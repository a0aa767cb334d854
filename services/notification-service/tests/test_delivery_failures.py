"""SMTP refusing or down, poison messages: retried with back-off, dead-lettered, re-sendable."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing import wait_until

# Every connection of the service's role but this one, as a PostgreSQL failover drops them.
DROP_CONNECTIONS = text("""
SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
WHERE usename = current_user AND datname = current_database() AND pid <> pg_backend_pid()
""")
HANDLED = text("SELECT count(*) FROM notification.processed_events WHERE event_id = CAST(:event_id AS uuid)")


async def _only_notification(client: httpx.AsyncClient, user: Any) -> dict[str, Any]:
    [row] = (await client.get("/notifications", headers=user.headers)).json()["items"]
    return dict(row)


async def _settled(client: httpx.AsyncClient, user: Any, status: str) -> dict[str, Any]:
    """The user's one notification, once it reached ``status``."""

    async def probe() -> dict[str, Any] | None:
        rows = (await client.get("/notifications", headers=user.headers)).json()["items"]
        return rows[0] if rows and rows[0]["status"] == status else None

    return await wait_until(probe, what=f"notification {status}")


async def test_mail_arrives_after_smtp_stops_refusing(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any, smtp: Any, counter: Any
) -> None:
    user = new_user()
    retried_before = counter("notifications_total", channel="email", template="tickets", outcome="retried")
    smtp.refuse(2)
    event = await publish("booking.confirmed", user)
    [mail] = await mails(user.email)
    assert event["data"]["booking_id"] in mail.part("plain") and smtp.refusals == 0
    row = await _settled(client, user, "sent")
    assert row["attempts"] == 3 and row["last_error"] is None
    retried = counter("notifications_total", channel="email", template="tickets", outcome="retried")
    assert retried - retried_before == 2


async def test_pending_while_smtp_down_then_failed_dead_lettered_and_resent_by_admin(
    client: httpx.AsyncClient,
    new_user: Any,
    publish: Any,
    mails: Any,
    smtp: Any,
    smtp_proxy: Any,
    dead_letters: Any,
) -> None:
    user, admin = new_user(), new_user(roles=("user", "admin"))
    await smtp_proxy.cut()
    try:
        event = await publish("booking.expired", user)
        row = await _settled(client, user, "failed")
        await wait_until(lambda: dead_letters.holds(event["event_id"]), what="event dead-lettered")
    finally:
        await smtp_proxy.restore()
    assert row["attempts"] == 4 and "SMTP unavailable" in row["last_error"]
    assert smtp.to(user.email) == []
    retry = f"/notifications/{row['id']}/retry"
    assert (await client.post(retry, headers=user.headers)).status_code == 403
    resent = await client.post(retry, headers=admin.headers)
    assert resent.status_code == 200 and resent.json()["status"] == "sent"
    assert len(await mails(user.email)) == 1
    again = await client.post(retry, headers=admin.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_sent"


async def test_admin_retry_while_smtp_still_down_is_503(
    client: httpx.AsyncClient, new_user: Any, publish: Any, smtp_proxy: Any
) -> None:
    user, admin = new_user(), new_user(roles=("admin",))
    await smtp_proxy.cut()
    try:
        await publish("payment.failed", user)
        row = await _settled(client, user, "failed")
        response = await client.post(f"/notifications/{row['id']}/retry", headers=admin.headers)
    finally:
        await smtp_proxy.restore()
    assert response.status_code == 503 and response.json()["error"]["code"] == "delivery_failed"
    assert (await _only_notification(client, user))["attempts"] == 5


async def test_retry_of_unknown_notification_is_404(client: httpx.AsyncClient, new_user: Any) -> None:
    admin = new_user(roles=("admin",))
    missing = "/notifications/00000000-0000-4000-8000-000000000000/retry"
    assert (await client.post(missing, headers=admin.headers)).status_code == 404


async def test_poison_messages_are_dead_lettered_and_do_not_block_the_queue(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any, dead_letters: Any, spy: Any
) -> None:
    user = new_user()
    await dead_letters.publish_raw("booking.confirmed", b"not json {poison-raw}")
    await spy.publish("payment.failed", {"poison": "no envelope at all"})
    broken = await publish("booking.confirmed", user, booking_id="not-a-uuid", user_email=None)
    await publish("booking.confirmed", user)
    [mail] = await mails(user.email)
    assert "Your tickets" in mail.subject
    for marker in ("poison-raw", "no envelope at all", broken["event_id"]):
        await wait_until(lambda m=marker: dead_letters.holds(m), what=f"{marker} dead-lettered")


async def test_health_reports_smtp(client: httpx.AsyncClient, smtp_proxy: Any) -> None:
    healthy = await client.get("/health")
    assert healthy.status_code == 200 and healthy.json()["checks"]["smtp"] == "ok"
    await smtp_proxy.cut()
    try:
        down = await client.get("/health")
    finally:
        await smtp_proxy.restore()
    assert down.status_code == 503 and down.json()["checks"]["smtp"].startswith("down")
    assert down.json()["checks"]["rabbitmq"] == "ok"


async def test_an_address_with_a_line_break_fails_at_once_and_mails_nobody(
    client: httpx.AsyncClient, new_user: Any, publish: Any, smtp: Any
) -> None:
    """A header injection attempt: never written into the mail, never retried."""
    user = new_user()
    await publish("booking.confirmed", user, user_email=f"{user.email}\r\nBcc: victim@example.com")
    row = await _settled(client, user, "failed")
    assert row["attempts"] == 1 and "control characters" in row["last_error"]
    assert smtp.to("victim@example.com") == [] and smtp.to(user.email) == []


async def test_a_mail_out_just_as_the_database_drops_is_recorded_sent_not_sent_again(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any, smtp: Any, db: AsyncEngine
) -> None:
    user = new_user()

    async def drop_connections() -> None:
        async with db.connect() as connection:
            await connection.execute(DROP_CONNECTIONS)
        await db.dispose()  # the test's own idle connections were dropped too

    smtp.before_answer.append(drop_connections)  # the mail is out; recording it finds no connection
    event = await publish("booking.confirmed", user)
    await mails(user.email)

    async def handled() -> bool:
        async with db.connect() as connection:
            return bool((await connection.execute(HANDLED, {"event_id": event["event_id"]})).scalar_one())

    await wait_until(handled, what="the event handled (its dedupe record committed)")
    assert len(smtp.to(user.email)) == 1  # the redelivered event found the notification sent
    assert (await _settled(client, user, "sent"))["attempts"] == 1
