"""Every SQL statement of notification-service."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import Notification, Preference

_notifications = cast(Table, Notification.__table__)  # Core statements on the hot path


async def claim_notification(session: AsyncSession, values: dict[str, Any]) -> Notification:
    """Insert a pending notification unless (event_id, channel) exists; return the row either way.

    One Core statement for a new row (the usual case; the ORM's insert machinery cost more
    CPU than the round trip); an existing row is read by a second.
    """
    inserted = await session.execute(
        insert(_notifications)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(constraint="uq_notifications_event_id_channel")
        .returning(*_notifications.c)
    )
    row = inserted.one_or_none()
    if row is not None:
        return Notification(**row._mapping)  # not in any session: read, never flushed
    stmt = select(Notification).where(
        Notification.event_id == values["event_id"], Notification.channel == values["channel"]
    )
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def record_attempt(
    session: AsyncSession, notification_id: uuid.UUID, status: str, error: str | None
) -> None:
    """Count one delivery attempt and its outcome (``sent`` stamps ``sent_at``)."""
    await session.execute(
        update(_notifications)
        .where(_notifications.c.id == notification_id)
        .values(
            attempts=_notifications.c.attempts + 1,
            status=status,
            last_error=error,
            sent_at=func.now() if status == "sent" else None,
        )
    )


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
    return await session.get(Preference, user_id)


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
