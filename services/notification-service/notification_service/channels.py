"""Delivery channels: email over SMTP (aiosmtplib) and SMS through a provider interface."""

from __future__ import annotations

import binascii
import logging
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Protocol

import aiosmtplib
import httpx

from notification_service.config import NotificationSettings
from notification_service.rendering import RenderedMessage
from notification_service.smtp_pool import SMTP_ERRORS, PooledSMTP, SmtpPool

logger = logging.getLogger("notification_service.channels")
MESSAGE_ID_DOMAIN = "moviebooking.local"
CRLF = "\r\n"


class DeliveryError(Exception):
    """A message was not delivered. ``permanent``: retrying the same message cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def quoted_printable(text: str) -> str:
    """UTF-8 text as quoted-printable with CRLF lines: 7-bit, lines of at most 76 characters."""
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return binascii.b2a_qp(crlf.encode("utf-8"), istext=True).decode("ascii")


def build_email(sender: str, to: str, message_id: str, body: RenderedMessage) -> bytes:
    """A multipart/alternative mail (plain text + HTML) whose Message-ID is the notification id.

    Written directly: ``email.message.EmailMessage`` parses every header it is given and
    folds them again, which was ~11 % of a mail's CPU (docs/benchmarks.md).
    Both parts are quoted-printable, so ``=_`` never occurs in them and bounds them safely.
    """
    if not to.isprintable():
        raise DeliveryError("recipient address contains control characters", permanent=True)
    subject = Header(body.subject, "us-ascii" if body.subject.isascii() else "utf-8", header_name="Subject")
    boundary = f"=_{message_id}"
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject.encode(linesep=CRLF)}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: <{message_id}@{MESSAGE_ID_DOMAIN}>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"',
        "",
    ]
    for subtype, content in (("plain", body.text), ("html", body.html)):
        lines += [f"--{boundary}", f'Content-Type: text/{subtype}; charset="utf-8"']
        lines += ["Content-Transfer-Encoding: quoted-printable", "", quoted_printable(content)]
    lines += [f"--{boundary}--", ""]
    return CRLF.join(lines).encode("utf-8")


def _smtp_failure(exc: Exception) -> DeliveryError:
    """5xx answers are permanent (bad address); 4xx, timeouts and refused connections are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        return DeliveryError(f"recipients refused: {codes}", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500)
    return DeliveryError(f"SMTP unavailable: {type(exc).__name__}: {exc}")


class EmailSender:
    """Sends mails over a few SMTP connections kept open between them (smtp_pool.py)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        name, address = parseaddr(settings.mail_from)
        self.sender = formataddr((name, address), charset="utf-8")  # the From header
        self.envelope_sender = address
        self.pool = SmtpPool(self._connect, settings.smtp_pool_size, settings.smtp_idle_seconds)

    def _client(self) -> PooledSMTP:
        s = self.settings
        return PooledSMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_start_tls,
            timeout=s.smtp_timeout_seconds,
        )

    async def _connect(self) -> PooledSMTP:
        smtp = self._client()
        await smtp.connect()
        return smtp

    async def send(self, to: str, message_id: str, body: RenderedMessage) -> None:
        """Deliver to the SMTP server; raise :class:`DeliveryError` when it does not accept."""
        message = build_email(self.sender, to, message_id, body)
        international = not (to + self.envelope_sender).isascii()
        options = ["SMTPUTF8"] if international else []
        try:
            await self.pool.sendmail(self.envelope_sender, to, message, options)
        except SMTP_ERRORS as exc:
            raise _smtp_failure(exc) from exc

    async def check(self) -> None:
        """Readiness: the SMTP server accepts a new connection and answers EHLO and NOOP."""
        async with self._client() as smtp:
            await smtp.noop()

    async def aclose(self) -> None:
        """Quit the pooled connections (at shutdown)."""
        await self.pool.close()


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
