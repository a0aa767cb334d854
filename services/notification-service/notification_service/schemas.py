"""notification-service request and response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    channel: Literal["email", "sms"]
    template: str
    recipient: str
    subject: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class PreferencesIn(BaseModel):
    """Channels to be told on; SMS needs a phone number (kept from registration when omitted)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": True, "sms": True, "phone_number": "+84912345678"}]},
    )

    email: bool = True
    sms: bool = False
    phone_number: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")


class PreferencesOut(BaseModel):
    email: bool
    sms: bool
    phone_number: str | None
