"""Delivery channels: email over SMTP (aiosmtplib) and SMS through a provider interface."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib
import httpx

from notification_service.config import NotificationSettings
from notification_service.rendering import RenderedMessage

logger = logging.getLogger("notification_service.channels")
MESSAGE_ID_DOMAIN = "moviebooking.local"


class DeliveryError(Exception):
    """A message was not delivered. ``permanent``: retrying the same message cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def build_email(
    settings: NotificationSettings, to: str, message_id: str, body: RenderedMessage
) -> EmailMessage:
    """A multipart/alternative mail (plain text + HTML) whose Message-ID is the notification id."""
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = to
    mail["Subject"] = body.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{message_id}@{MESSAGE_ID_DOMAIN}>"
    mail.set_content(body.text)
    mail.add_alternative(body.html, subtype="html")
    return mail


def _smtp_failure(exc: Exception) -> DeliveryError:
    """5xx answers are permanent (bad address); 4xx, timeouts and refused connections are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        return DeliveryError(f"recipients refused: {codes}", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500)
    return DeliveryError(f"SMTP unavailable: {type(exc).__name__}: {exc}")


class EmailSender:
    """Sends one mail per SMTP connection (simple, and nothing stale to recover)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_start_tls,
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, to: str, message_id: str, body: RenderedMessage) -> None:
        """Deliver to the SMTP server; raise :class:`DeliveryError` when it does not accept."""
        mail = build_email(self.settings, to, message_id, body)
        try:
            async with self._client() as smtp:
                await smtp.send_message(mail)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _smtp_failure(exc) from exc

    async def check(self) -> None:
        """Readiness: the SMTP server answers EHLO and NOOP."""
        async with self._client() as smtp:
            await smtp.noop()


class SmsProvider(Protocol):
    """Sends a text message; raises :class:`DeliveryError` when the provider does not accept it."""

    async def send(self, to: str, message_id: str, text: str) -> None: ...

    async def aclose(self) -> None: ...


def mask_phone(number: str) -> str:
    return f"***{number[-4:]}" if len(number) > 4 else "***"


class LogSmsProvider:
    """Development provider: the SMS is written to the log (number masked)."""

    async def send(self, to: str, message_id: str, text: str) -> None:
        logger.info("SMS %s to %s: %s", message_id, mask_phone(to), text)

    async def aclose(self) -> None:
        return None


class WebhookSmsProvider:
    """POSTs ``{to, text, message_id}`` as JSON to an SMS gateway's webhook."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.client = httpx.AsyncClient(timeout=timeout, headers=headers)

    async def send(self, to: str, message_id: str, text: str) -> None:
        try:
            response = await self.client.post(
                self.url, json={"to": to, "text": text, "message_id": message_id}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code != 429
            raise DeliveryError(f"SMS gateway answered {response.status_code}", permanent=permanent)

    async def aclose(self) -> None:
        await self.client.aclose()


def sms_provider(settings: NotificationSettings) -> SmsProvider:
    """The configured SMS provider (``SMS_PROVIDER=log|webhook``)."""
    if settings.sms_provider == "webhook" and settings.sms_webhook_url:
        token = settings.sms_webhook_token.get_secret_value() if settings.sms_webhook_token else None
        return WebhookSmsProvider(settings.sms_webhook_url, token, settings.http_timeout_seconds)
    return LogSmsProvider()
