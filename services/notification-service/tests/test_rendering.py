"""Amounts and times as the mails print them."""

from __future__ import annotations

import pytest

from notification_service.rendering import booking_reference, format_money, format_time


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (2500, "USD", "25.00 USD"),
        (5, "eur", "0.05 EUR"),
        (180000, "VND", "180,000 VND"),
        (123456, "USD", "1,234.56 USD"),
    ],
)
def test_money_is_printed_from_minor_units(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        (None, "Thu 26 Nov 2026, 12:30 UTC"),
        ("Asia/Ho_Chi_Minh", "Thu 26 Nov 2026, 19:30 (Asia/Ho_Chi_Minh)"),
        ("Not/AZone", "Thu 26 Nov 2026, 12:30 UTC"),
    ],
)
def test_start_time_is_local_when_the_zone_is_known(zone: str | None, shown: str) -> None:
    assert format_time("2026-11-26T12:30:00+00:00", zone) == shown


def test_booking_reference_is_the_ids_first_eight_characters() -> None:
    assert booking_reference("b925bda6-bca3-4df6-9874-f3841a34d67d") == "B925BDA6"
