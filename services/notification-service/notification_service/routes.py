"""notification-service HTTP API (thin: parse, authorize, call the service, shape the answer)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from notification_service import repository, service
from notification_service.models import Preference
from notification_service.schemas import NotificationOut, NotificationPage, PreferencesIn, PreferencesOut
from notification_service.service import DISPATCHER, Dispatcher
from servicekit.db import SessionDep
from servicekit.errors import error_responses
from servicekit.security import AdminUser, CurrentUser

router = APIRouter(tags=["notifications"])


DispatcherDep = Annotated[Dispatcher, Depends(DISPATCHER)]


def _preferences_out(preference: Preference) -> PreferencesOut:
    return PreferencesOut(
        email=preference.email_enabled, sms=preference.sms_enabled, phone_number=preference.phone_number
    )


@router.get("/notifications", response_model=NotificationPage, responses=error_responses(401, 422))
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> NotificationPage:
    """The caller's notifications, newest first (paginated)."""
    items, total = await repository.list_for_user(session, user.user_id, limit, offset)
    page = [NotificationOut.model_validate(item) for item in items]
    return NotificationPage(items=page, total=total, limit=limit, offset=offset)


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationOut,
    responses=error_responses(401, 404, 422),
)
async def get_notification(
    notification_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> NotificationOut:
    """One of the caller's notifications (another user's is 404)."""
    return NotificationOut.model_validate(
        await service.own_notification(session, user.user_id, notification_id)
    )


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationOut,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def retry_notification(
    notification_id: uuid.UUID, _: AdminUser, dispatcher: DispatcherDep
) -> NotificationOut:
    """Admin: send a failed (or stuck pending) notification again; 503 when delivery fails again."""
    return NotificationOut.model_validate(await dispatcher.resend(notification_id))


@router.get("/preferences", response_model=PreferencesOut, responses=error_responses(401))
async def get_preferences(user: CurrentUser, session: SessionDep) -> PreferencesOut:
    """The caller's notification channels (email only until changed)."""
    return _preferences_out(await service.preferences_of(session, user.user_id))


@router.put("/preferences", response_model=PreferencesOut, responses=error_responses(401, 422))
async def put_preferences(body: PreferencesIn, user: CurrentUser, session: SessionDep) -> PreferencesOut:
    """Choose the caller's channels: email, SMS, or both."""
    saved = await service.set_preferences(session, user.user_id, body.email, body.sms, body.phone_number)
    return _preferences_out(saved)
