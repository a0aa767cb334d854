"""Per-request context (request id, user id, event id) carried into every log line."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)
