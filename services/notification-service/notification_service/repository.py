"""Every SQL statement of notification-service."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import Notification, Preference
from servicekit import hotsql

# The statements of every consumed event, straight on asyncpg (servicekit.hotsql).
CLAIM_NOTIFICATION = """
INSERT INTO notifications (id, user_id, event_id, event_type, channel, template, recipient, subject, context)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT ON CONSTRAINT uq_notifications_event_id_channel DO NOTHING
RETURNING id, status, attempts, last_error, created_at, sent_at
"""
RECORD_ATTEMPT = """
UPDATE notifications
SET attempts = attempts + 1, status = $2, last_error = $3, sent_at = CASE WHEN $4 THEN now() END
WHERE id = $1
"""
PREFERENCE = """
SELECT user_id, email_enabled, sms_enabled, phone_number, updated_at FROM preferences WHERE user_id = $1
"""
# The same read, sent with the consumer's dedupe record (servicekit's ReadWithClaim: from $4).
PREFERENCE_WITH_CLAIM = PREFERENCE.replace("$1", "$4")


async def claim_notification(session: AsyncSession, values: dict[str, Any]) -> Notification:
    """Insert a pending notification unless (event_id, channel) exists; return the row either way.

    One statement for a new row (the usual case); an existing row is read by a second.
    """
    v = values
    row = await hotsql.fetchrow(
        session,
        CLAIM_NOTIFICATION,
        uuid.uuid4(),
        *(v["user_id"], v["event_id"], v["event_type"], v["channel"], v["template"]),
        *(v["recipient"], v["subject"], json.dumps(v["context"])),
    )
    if row is not None:
        return Notification(**values, **row)  # not in any session: read, never flushed
    stmt = select(Notification).where(
        Notification.event_id == values["event_id"], Notification.channel == values["channel"]
    )
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def record_attempt(
    session: AsyncSession, notification_id: uuid.UUID, status: str, error: str | None
) -> None:
    """Count one delivery attempt and its outcome (``sent`` stamps ``sent_at``)."""
    await hotsql.execute(session, RECORD_ATTEMPT, notification_id, status, error, status == "sent")


async def get_notification(session: AsyncSession, notification_id: uuid.UUID) -> Notification | None:
    return await session.get(Notification, notification_id)


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """One page of a user's notifications, newest first, and how many there are."""
    page = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id)
        .limit(limit)
        .offset(offset)
    )
    total = select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
    items = list((await session.execute(page)).scalars())
    return items, int((await session.execute(total)).scalar_one())


async def get_preference(session: AsyncSession, user_id: uuid.UUID) -> Preference | None:
    """The user's row as a plain object (not in the session: the consumer only reads it)."""
    row = await hotsql.fetchrow(session, PREFERENCE, user_id)
    return None if row is None else Preference(**row)


def claimed_preference(row: hotsql.Row) -> Preference | None:
    """The user's preferences as read with the event's dedupe record (None: never set)."""
    return None if row["user_id"] is None else Preference(**row)


async def remember_phone(session: AsyncSession, user_id: uuid.UUID, phone_number: str | None) -> None:
    """Create the default preferences of a new user with their phone; keep choices already made."""
    stmt = insert(Preference).values(user_id=user_id, phone_number=phone_number)
    keep = {"phone_number": func.coalesce(Preference.phone_number, stmt.excluded.phone_number)}
    await session.execute(stmt.on_conflict_do_update(index_elements=[Preference.user_id], set_=keep))


async def save_preference(
    session: AsyncSession, user_id: uuid.UUID, email: bool, sms: bool, phone_number: str | None
) -> Preference:
    values = {"email_enabled": email, "sms_enabled": sms, "phone_number": phone_number}
    stmt = (
        insert(Preference)
        .values(user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[Preference.user_id], set_={**values, "updated_at": func.now()})
        .returning(Preference)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()
