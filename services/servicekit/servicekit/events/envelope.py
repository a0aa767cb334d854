"""The event envelope of docs/contracts.md:
``{event_id, event_type, occurred_at, producer, version, data}``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class EventEnvelope(BaseModel):
    event_id: uuid.UUID
    event_type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    producer: str
    version: int = 1
    data: dict[str, Any]


def new_event(event_type: str, producer: str, data: dict[str, Any], version: int = 1) -> EventEnvelope:
    """A fresh envelope with a new event id, stamped now (UTC)."""
    return EventEnvelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=datetime.now(UTC),
        producer=producer,
        version=version,
        data=data,
    )
