"""The rules of notification-service: what an event sends, at most once per channel, with retries."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service import repository, rules
from notification_service.attachments import FILES_OF_TEMPLATE
from notification_service.channels import DeliveryError, EmailSender, SmsProvider
from notification_service.config import NotificationSettings
from notification_service.events import UserEvent, UserRegistered, parse_event_data
from notification_service.metrics import NOTIFICATIONS
from notification_service.models import Notification, Preference
from notification_service.rendering import RenderedMessage, Renderer
from servicekit.components import Component
from servicekit.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable, dependency_unavailable
from servicekit.events import EventEnvelope
from servicekit.events.consumer import CLAIMED_WITH

logger = logging.getLogger("notification_service.service")
OUTCOME_OF_STATUS = {"sent": "sent", "failed": "failed", "pending": "retried"}
# A PostgreSQL failover (the standby promoted) takes seconds; a crash of this process between
# sending and recording is the one way left to send a message twice.
SENT_RECORD_PATIENCE_SECONDS = 30.0
SENT_RECORD_RETRY_SECONDS = 0.5


class RetryLater(Exception):
    """A delivery failed for now; the consumer retries the event with back-off."""


class Dispatcher:
    """Turns events into notifications and delivers each (event, channel) at most once.

    A notification row is claimed (committed as ``pending``) before anything is sent,
    and marked ``sent`` right after: a redelivered event skips what is ``sent`` and
    retries what is still ``pending``. Each of the two is a single statement committed on
    its own (``statements``: autocommit sessions, no BEGIN / COMMIT round trips).
    """

    def __init__(
        self,
        statements: async_sessionmaker[AsyncSession],
        settings: NotificationSettings,
        email: EmailSender,
        sms: SmsProvider,
    ) -> None:
        self.statements, self.settings = statements, settings
        self.email, self.sms = email, sms
        self.renderer = Renderer()

    async def on_event(self, session: AsyncSession, event: EventEnvelope) -> None:
        """Consumer handler: send what ``event`` calls for (see rules.py); raise to retry later."""
        data = parse_event_data(event.event_type, event.data)
        if isinstance(data, UserRegistered):
            await repository.remember_phone(session, data.user_id, data.phone_number)
        template = rules.template_for(event.event_type, data)
        if template is None:
            return
        preference = await _preference(session, data.user_id)
        context = {"event_type": event.event_type, **data.model_dump(mode="json")}
        body = await self._render(template, context)  # once, for every channel
        drafts = _drafts(event, data, template, preference, context, body.subject)
        await self._deliver_all(drafts, body)

    async def _deliver_all(self, drafts: list[dict[str, Any]], body: RenderedMessage) -> None:
        failures: list[RetryLater] = []
        for draft in drafts:
            try:
                await self._deliver(draft, body)
            except RetryLater as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    async def _deliver(self, draft: dict[str, Any], body: RenderedMessage) -> None:
        async with self.statements() as session:
            row = await repository.claim_notification(session, draft)
        if row.status == "sent":
            return  # an earlier delivery of this event already sent it
        try:
            await self._send(row, body)
        except DeliveryError as exc:
            await self._after_failure(row, exc)
            return
        await self._record_sent(row)

    async def _record_sent(self, row: Notification) -> None:
        """The message is out: record it ``sent`` even across a database failover. Raised to
        the consumer instead, the event would come back, find the row still ``pending`` and
        send the message again (scripts/chaos.sh saw a second tickets mail that way). Tried
        again while the database is unavailable, up to SENT_RECORD_PATIENCE_SECONDS."""
        deadline = time.monotonic() + SENT_RECORD_PATIENCE_SECONDS
        while True:
            try:
                await self._record(row, "sent", None)
                return
            except Exception as exc:
                if not dependency_unavailable(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(SENT_RECORD_RETRY_SECONDS)

    async def _after_failure(self, row: Notification, exc: DeliveryError) -> None:
        """Pending while the retry budget lasts (then the consumer dead-letters it); failed after."""
        give_up = exc.permanent or row.attempts + 1 >= self.settings.consumer_max_attempts
        await self._record(row, "failed" if give_up else "pending", str(exc))
        if not exc.permanent:
            raise RetryLater(f"notification {row.id}: {exc}") from exc

    async def _render(self, template: str, context: dict[str, Any]) -> RenderedMessage:
        """The message and its files; those (QR codes: milliseconds each) made in a thread."""
        body = self.renderer.render(template, context)
        make_files = FILES_OF_TEMPLATE.get(template)
        if make_files is None:
            return body
        return dataclasses.replace(body, attachments=await asyncio.to_thread(make_files, context))

    async def _send(self, row: Notification, body: RenderedMessage | None = None) -> None:
        body = body or await self._render(row.template, row.context)
        if row.channel == "email":
            await self.email.send(row.recipient, str(row.id), body)
        else:
            await self.sms.send(row.recipient, str(row.id), body.sms)

    async def _record(self, row: Notification, status: str, error: str | None) -> None:
        async with self.statements() as session:
            await repository.record_attempt(session, row.id, status, error)
        NOTIFICATIONS.labels(row.channel, row.template, OUTCOME_OF_STATUS[status]).inc()
        if status != "sent":
            logger.warning("notification %s %s: %s", row.id, status, error)

    async def resend(self, notification_id: uuid.UUID) -> Notification:
        """Admin: send a notification that is not sent yet (failed or stuck pending) once more."""
        row = await self._load(notification_id)
        if row.status == "sent":
            raise Conflict("Notification was already sent", code="already_sent")
        try:
            await self._send(row)
        except DeliveryError as exc:
            await self._record(row, "failed", str(exc))
            raise ServiceUnavailable(f"Delivery failed again: {exc}", code="delivery_failed") from exc
        await self._record(row, "sent", None)
        return await self._load(notification_id)

    async def _load(self, notification_id: uuid.UUID) -> Notification:
        async with self.statements() as session:
            row = await repository.get_notification(session, notification_id)
        if row is None:
            raise NotFound("Notification not found")
        return row


DISPATCHER: Component[Dispatcher] = Component("dispatcher")


def preference_with_claim(event: EventEnvelope) -> tuple[str, tuple[Any, ...]] | None:
    """The consumer's ReadWithClaim: the user's preferences, read in the dedupe record's round trip
    for the events that send something (the handler reads them itself when this could not).
    Not for ``user.registered``: its handler writes the preferences (the phone) before reading."""
    if event.event_type not in rules.TEMPLATE_FOR_EVENT or event.event_type == "user.registered":
        return None
    try:
        user_id = uuid.UUID(str(event.data.get("user_id")))
    except ValueError:
        return None  # the handler's parse says why
    return repository.PREFERENCE_WITH_CLAIM, (user_id,)


async def _preference(session: AsyncSession, user_id: uuid.UUID) -> Preference | None:
    claimed = session.info.get(CLAIMED_WITH)
    if claimed is not None and claimed["user_id"] in (None, user_id):
        return repository.claimed_preference(claimed)
    return await repository.get_preference(session, user_id)


def _drafts(
    event: EventEnvelope,
    data: UserEvent,
    template: str,
    preference: Preference | None,
    context: dict[str, Any],
    subject: str,
) -> list[dict[str, Any]]:
    """The notification rows ``event`` calls for, one per channel the user gets it on."""
    common = {
        "user_id": data.user_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "template": template,
        "subject": subject,
        "context": context,
    }
    phone = preference.phone_number if preference else None
    return [
        {**common, "channel": channel, "recipient": data.user_email if channel == "email" else phone}
        for channel in rules.channels_for(template, preference)
    ]


async def own_notification(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """The caller's notification; someone else's is reported as not found."""
    row = await repository.get_notification(session, notification_id)
    if row is None or row.user_id != user_id:
        raise NotFound("Notification not found")
    return row


async def preferences_of(session: AsyncSession, user_id: uuid.UUID) -> Preference:
    """The user's channel preferences (email only when never set)."""
    found = await repository.get_preference(session, user_id)
    return found or Preference(user_id=user_id, email_enabled=True, sms_enabled=False, phone_number=None)


async def set_preferences(
    session: AsyncSession, user_id: uuid.UUID, email: bool, sms: bool, phone_number: str | None
) -> Preference:
    """Choose channels; at least one, and SMS needs a phone number (given now or known)."""
    if not (email or sms):
        raise Unprocessable("Choose at least one channel")
    phone = phone_number or (await preferences_of(session, user_id)).phone_number
    if sms and not phone:
        raise Unprocessable("SMS needs a phone number", details=[{"loc": ["phone_number"]}])
    return await repository.save_preference(session, user_id, email, sms, phone)
