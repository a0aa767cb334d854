"""booking-service's OpenAPI says what the code enforces."""

from __future__ import annotations

from typing import Any

import pytest

from booking_service.config import BookingSettings
from booking_service.main import create_app


@pytest.fixture(scope="module")
def spec(settings: BookingSettings) -> dict[str, Any]:
    return create_app(settings).openapi()


def test_booking_lists_the_400_for_an_unreadable_body(spec: dict[str, Any]) -> None:
    book = spec["paths"]["/book"]["post"]["responses"]
    assert {"400", "401", "404", "409", "422", "503"} <= set(book)
    assert book["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    cancel = spec["paths"]["/bookings/{booking_id}/cancel"]["post"]
    assert "requestBody" not in cancel and "400" not in cancel["responses"]


def test_seat_ids_are_documented_unique_case_insensitively(spec: dict[str, Any]) -> None:
    """uniqueItems says it for exact repeats; the description for `a1` next to `A1` (both 422)."""
    seat_ids = spec["components"]["schemas"]["BookRequest"]["properties"]["seat_ids"]
    assert seat_ids["uniqueItems"] is True
    assert "case-insensitive" in seat_ids["description"] and '["A1", "a1"]' in seat_ids["description"]
