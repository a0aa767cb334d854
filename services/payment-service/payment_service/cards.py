"""Card numbers: normalising, the Luhn check, brand and last four (all we ever keep)."""

from __future__ import annotations

_BRAND_PREFIXES = (
    (("34", "37"), "amex"),
    (("4",), "visa"),
    (("51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27"), "mastercard"),
    (("6011", "65", "644", "645", "646", "647", "648", "649"), "discover"),
)


def normalize_card_number(raw: str) -> str:
    """Digits only (spaces and dashes allowed in input); ValueError when not a card number."""
    digits = raw.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise ValueError("card_number must be 12 to 19 digits")
    if not luhn_valid(digits):
        raise ValueError("card_number fails the Luhn check")
    return digits


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_brand(digits: str) -> str:
    for prefixes, brand in _BRAND_PREFIXES:
        if digits.startswith(prefixes):
            return brand
    return "unknown"


def card_last4(digits: str) -> str:
    return digits[-4:]
