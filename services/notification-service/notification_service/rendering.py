"""Message bodies from the Jinja2 templates in ``templates/``: subject, plain text, HTML, SMS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# The domain of the mails' Message-IDs and of the Content-IDs of their inline images.
MAIL_DOMAIN = "moviebooking.local"
# ISO 4217 currencies without minor units.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


@dataclass(frozen=True)
class Attachment:
    """A file of a mail: shown in the HTML where ``content_id`` is set (``cid:``), else attached."""

    content_type: str
    filename: str
    data: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    sms: str
    attachments: tuple[Attachment, ...] = ()


def format_money(amount: int, currency: str) -> str:
    """Integer minor units as a readable amount: ``1250, "USD"`` -> ``12.50 USD``."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,} {currency.upper()}"
    return f"{amount / 100:,.2f} {currency.upper()}"


def format_time(value: str | datetime | None, time_zone: str | None = None) -> str:
    """An ISO 8601 instant as ``Sat 28 Nov 2026, 19:30 UTC``; in ``time_zone`` (IANA) when known."""
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    try:
        zone = ZoneInfo(time_zone) if time_zone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None:
        return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")
    return moment.astimezone(zone).strftime(f"%a %d %b %Y, %H:%M ({time_zone})")


# Why a booking was cancelled (booking.cancelled) and why a payment was refunded (payment.refunded),
# as the customer reads it. An unknown reason says nothing rather than something wrong.
CANCEL_REASONS = {
    "user_cancelled": "You cancelled this booking.",
    "refund_requested": "It was cancelled because you asked for your payment back.",
    "refunded_by_admin": "The cinema refunded your payment and cancelled it.",
    "payment_after_expiry": "Your payment arrived after the seat hold had expired; the seats were released.",
}
REFUND_REASONS = {
    "user_cancelled": "You cancelled the booking.",
    "requested_by_customer": "You asked for a refund.",
    "requested_by_admin": "The cinema refunded it.",
    "paid_after_cancellation": "The booking had been cancelled before your payment went through.",
    "paid_after_expiry": "Your seat hold had expired before your payment went through.",
    "paid_after_failure": "The booking had already been released before your payment went through.",
    "payment_after_expiry": "Your seat hold had expired before your payment went through.",
}


def cancel_reason(reason: str | None) -> str:
    return CANCEL_REASONS.get(reason or "", "")


def refund_reason(reason: str | None) -> str:
    return REFUND_REASONS.get(reason or "", "")


def booking_reference(booking_id: str) -> str:
    """The short reference printed on tickets: the booking id's first 8 characters."""
    return str(booking_id).replace("-", "")[:8].upper()


def qr_content_id(booking_id: str, position: int) -> str:
    """The Content-ID of the QR code image of a booking's ``position``-th ticket (from 1)."""
    return f"ticket{position}.{booking_id}@{MAIL_DOMAIN}"


class Renderer:
    """Renders ``<name>.subject.txt``, ``<name>.txt``, ``<name>.html`` and ``<name>.sms.txt``."""

    def __init__(self) -> None:
        # Compiled once and cached by the Environment; the templates ship with the package,
        # so no file is checked for changes on each use (auto_reload).
        self.env = Environment(
            loader=PackageLoader("notification_service", "templates"),
            auto_reload=False,
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            money=format_money,
            when=format_time,
            reference=booking_reference,
            cancel_reason=cancel_reason,
            refund_reason=refund_reason,
            qr_cid=qr_content_id,
        )

    def _part(self, template: str, suffix: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"{template}.{suffix}").render(**context)

    def subject(self, template: str, context: dict[str, Any]) -> str:
        """The one-line subject (whitespace collapsed, at most 200 characters)."""
        return " ".join(self._part(template, "subject.txt", context).split())[:200]

    def render(self, template: str, context: dict[str, Any]) -> RenderedMessage:
        """Every part of the message ``template`` for ``context``."""
        text, html = self._part(template, "txt", context), self._part(template, "html", context)
        sms = self._part(template, "sms.txt", context).strip()
        return RenderedMessage(self.subject(template, context), text, html, sms)
