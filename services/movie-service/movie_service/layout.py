"""Seat layouts: row labels (A..Z, AA..) and the seats a layout expands into."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

TIERS = ("standard", "vip", "couple")


@dataclass(frozen=True, slots=True)
class Seat:
    seat_id: str
    row: str
    number: int
    tier: str


def row_label(index: int) -> str:
    """The label of the ``index``-th row (0-based): A..Z, then AA, AB, .."""
    letters = string.ascii_uppercase
    if index < len(letters):
        return letters[index]
    return letters[index // len(letters) - 1] + letters[index % len(letters)]


def expand_seats(layout: dict[str, Any]) -> list[Seat]:
    """Every seat of a stored layout, row by row, numbered from 1."""
    return [
        Seat(f"{row['label']}{number}", row["label"], number, row["tier"])
        for row in layout["rows"]
        for number in range(1, row["seats"] + 1)
    ]


def tiers_of(layout: dict[str, Any]) -> set[str]:
    return {row["tier"] for row in layout["rows"]}
