"""Mails say why in words: cancellations, refunds and declines (the renderer alone, no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from notification_service.rendering import CANCEL_REASONS, REFUND_REASONS, Renderer


def _payment(**data: Any) -> dict[str, Any]:
    return {
        "payment_id": str(uuid.uuid4()),
        "booking_id": str(uuid.uuid4()),
        "amount": 2500,
        "currency": "USD",
    } | data


@pytest.mark.parametrize("reason", sorted(CANCEL_REASONS))
def test_a_cancellation_mail_says_why(reason: str) -> None:
    context = {"booking_id": str(uuid.uuid4()), "seats": ["A1"], "total_amount": 2500, "currency": "USD"}
    mail = Renderer().render("booking_cancelled", {**context, "reason": reason, "refund_required": False})
    assert CANCEL_REASONS[reason] in mail.text and CANCEL_REASONS[reason] in mail.html.replace("&#39;", "'")


@pytest.mark.parametrize("reason", sorted(REFUND_REASONS))
def test_a_refund_mail_says_why_in_words_not_codes(reason: str) -> None:
    mail = Renderer().render("payment_refunded", _payment(reason=reason))
    assert REFUND_REASONS[reason] in mail.text and reason not in mail.text


@pytest.mark.parametrize(
    ("final", "attempts_left", "words"),
    [
        (False, 2, "you can try another card (2 attempts left)"),
        (False, 1, "you can try another card (1 attempt left)"),
        (True, 0, "its seats were released"),
        (None, None, "If your seats are still held"),  # an older producer's event
    ],
)
def test_a_decline_mail_tells_whether_the_seats_are_still_held(
    final: bool | None, attempts_left: int | None, words: str
) -> None:
    data = _payment(reason="card_declined", final=final, attempts_left=attempts_left)
    mail = Renderer().render("payment_failed", data)
    assert words in mail.text and words in " ".join(mail.html.split())
