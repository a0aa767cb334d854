"""Which event mails the user, on which channels: one message per fact (see the README)."""

from __future__ import annotations

from pydantic import BaseModel

from notification_service.events import BookingCancelled
from notification_service.models import Preference

TEMPLATE_FOR_EVENT: dict[str, str] = {
    "user.registered": "welcome",
    # The tickets mail is the payment confirmation (docs/contracts.md, invariant 3): it carries the
    # amount and payment reference, so payment.completed sends nothing of its own.
    "booking.confirmed": "tickets",
    "booking.cancelled": "booking_cancelled",
    "booking.expired": "booking_expired",
    "payment.failed": "payment_failed",
    "payment.refunded": "payment_refunded",
}
# Tickets always go by email too: they are what the customer shows at the door.
ALWAYS_EMAILED = frozenset({"tickets"})


def template_for(event_type: str, data: BaseModel) -> str | None:
    """The template an event is told with, or None when another event already tells the fact."""
    if isinstance(data, BookingCancelled) and data.reason == "payment_failed":
        return None  # the payment.failed mail already said so
    return TEMPLATE_FOR_EVENT.get(event_type)


def channels_for(template: str, preference: Preference | None) -> list[str]:
    """The user's chosen channels (email when unset); SMS needs a phone number."""
    if preference is None:
        return ["email"]
    sms = preference.sms_enabled and bool(preference.phone_number)
    email = preference.email_enabled or template in ALWAYS_EMAILED or not sms
    return [name for name, chosen in (("email", email), ("sms", sms)) if chosen]
