"""Events auth-service publishes (through its outbox)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import User, outbox
from servicekit.events import add_event, new_event

PRODUCER = "auth-service"


async def publish_user_registered(session: AsyncSession, user: User) -> None:
    """``user.registered``: the welcome email's facts (never the password or its hash)."""
    data = {
        "user_id": str(user.id),
        "email": user.email,
        "username": user.username,
        "full_name": user.full_name,
        "phone_number": user.phone_number,
    }
    await add_event(session, outbox, new_event("user.registered", PRODUCER, data))
