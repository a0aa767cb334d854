"""Delivery channels: email over SMTP (aiosmtplib) and SMS through a provider interface."""

from __future__ import annotations

import base64
import binascii
import logging
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Protocol

import aiosmtplib
import httpx

from notification_service.config import NotificationSettings
from notification_service.rendering import MAIL_DOMAIN, Attachment, RenderedMessage
from notification_service.smtp_pool import SMTP_ERRORS, PooledSMTP, SmtpPool

logger = logging.getLogger("notification_service.channels")
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
    """The mail of a notification, whose Message-ID is the notification id.

    ``multipart/alternative`` (plain text + HTML); when the message has files, the HTML and its
    inline images (``cid:``) are a ``multipart/related`` and the whole, with the attached
    files after it, a ``multipart/mixed``.
    Written directly: ``email.message.EmailMessage`` parses every header it is given and
    folds them again, which was ~11 % of a mail's CPU (docs/benchmarks.md).
    Text parts are quoted-printable and files base64, so ``=_`` never occurs in them and
    begins every boundary safely (``=_<kind>.<id>``: no boundary begins another).
    """
    if not to.isprintable():
        raise DeliveryError("recipient address contains control characters", permanent=True)
    subject = Header(body.subject, "us-ascii" if body.subject.isascii() else "utf-8", header_name="Subject")
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject.encode(linesep=CRLF)}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: <{message_id}@{MAIL_DOMAIN}>",
        "MIME-Version: 1.0",
    ]
    return CRLF.join([*headers, *_mail_body(message_id, body), ""]).encode("utf-8")


def _mail_body(message_id: str, body: RenderedMessage) -> list[str]:
    inline = [_file_part(file) for file in body.attachments if file.content_id]
    attached = [_file_part(file) for file in body.attachments if not file.content_id]
    html = _text_part("html", body.html)
    if inline:
        html = _multipart('related; type="text/html"', f"=_related.{message_id}", [html, *inline])
    entity = _multipart("alternative", f"=_alternative.{message_id}", [_text_part("plain", body.text), html])
    if attached:
        entity = _multipart("mixed", f"=_mixed.{message_id}", [entity, *attached])
    return entity


def _multipart(subtype: str, boundary: str, parts: list[list[str]]) -> list[str]:
    lines = [f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"', ""]
    for part in parts:
        lines += [f"--{boundary}", *part]
    return [*lines, f"--{boundary}--"]


def _text_part(subtype: str, content: str) -> list[str]:
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        quoted_printable(content),
    ]


def _file_part(file: Attachment) -> list[str]:
    """A file, base64 in lines of 76 characters; inline with its Content-ID, or attached."""
    disposition = "inline" if file.content_id else "attachment"
    encoded = base64.b64encode(file.data).decode("ascii")
    lines = [
        f'Content-Type: {file.content_type};{CRLF} name="{file.filename}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: {disposition}; filename="{file.filename}"',
    ]
    if file.content_id:
        lines.append(f"Content-ID: <{file.content_id}>")
    return [*lines, "", *(encoded[i : i + 76] for i in range(0, len(encoded), 76))]


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
