"""The authorization matrix through the gateway (docs/contracts.md, invariant 5).

For every endpoint with an id, another user's id answers 404 (while its owner gets 200);
every user endpoint without a valid token answers 401; every admin endpoint as a plain
user answers 403. Needs the running system (``scripts/test.sh``; ``GATEWAY_URL``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from servicekit.config import ServiceSettings
from servicekit.testing import mint_token, wait_until

pytestmark = pytest.mark.system

ANY_ID = "00000000-0000-4000-8000-000000000000"
USER_ENDPOINTS = [
    ("GET", "/api/auth/verify"),
    ("GET", "/api/auth/me"),
    ("POST", "/api/bookings/book"),
    ("GET", "/api/bookings/bookings"),
    ("GET", f"/api/bookings/bookings/{ANY_ID}"),
    ("POST", f"/api/bookings/bookings/{ANY_ID}/cancel"),
    ("POST", "/api/payments/process"),
    ("GET", "/api/payments/payments"),
    ("GET", f"/api/payments/payments/{ANY_ID}"),
    ("POST", f"/api/payments/payments/{ANY_ID}/refund"),
    ("GET", "/api/notifications/notifications"),
    ("GET", f"/api/notifications/notifications/{ANY_ID}"),
    ("GET", "/api/notifications/preferences"),
    ("PUT", "/api/notifications/preferences"),
]
ADMIN_ENDPOINTS = [
    ("POST", "/api/movies/movies"),
    ("PATCH", f"/api/movies/movies/{ANY_ID}"),
    ("DELETE", f"/api/movies/movies/{ANY_ID}"),
    ("POST", "/api/movies/theaters"),
    ("PATCH", f"/api/movies/theaters/{ANY_ID}"),
    ("DELETE", f"/api/movies/theaters/{ANY_ID}"),
    ("POST", "/api/movies/auditoriums"),
    ("PATCH", f"/api/movies/auditoriums/{ANY_ID}"),
    ("DELETE", f"/api/movies/auditoriums/{ANY_ID}"),
    ("POST", "/api/movies/showtimes"),
    ("PATCH", f"/api/movies/showtimes/{ANY_ID}"),
    ("DELETE", f"/api/movies/showtimes/{ANY_ID}"),
    ("POST", f"/api/notifications/notifications/{ANY_ID}/retry"),
]


def bad_tokens() -> dict[str, str]:
    """Tokens that must all be refused: garbage, expired, wrong key, wrong audience/issuer, none."""
    settings = ServiceSettings()
    wrong_key = ServiceSettings(jwt_secret="another-secret-of-sufficient-length-0123456789")
    return {
        "garbage": "not.a.token",
        "expired": mint_token(settings, expires_in=timedelta(minutes=-5)),
        "wrong key": mint_token(wrong_key),
        "wrong audience": mint_token(settings, aud="someone-else"),
        "wrong issuer": mint_token(settings, iss="someone-else"),
        "refresh as access": mint_token(settings, typ="refresh"),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDAiLCJyb2xlcyI6WyJhZG1pbiJdfQ.",
    }


async def test_user_endpoints_without_a_valid_token_are_401(
    gateway: httpx.AsyncClient, json_error: Any
) -> None:
    variants: dict[str, dict[str, str]] = {"no token": {}, "not bearer": {"Authorization": "Basic eDp5"}}
    variants |= {name: {"Authorization": f"Bearer {token}"} for name, token in bad_tokens().items()}
    for method, path in USER_ENDPOINTS + ADMIN_ENDPOINTS:
        for name, headers in variants.items():
            response = await gateway.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, name, response.text)
            json_error(response, 401)


async def test_admin_endpoints_as_a_user_are_403(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    user = await people.user()
    for method, path in ADMIN_ENDPOINTS:
        response = await gateway.request(method, path, headers=user.headers, json={})
        assert response.status_code == 403, (method, path, response.text)
        json_error(response, 403)


async def test_admin_endpoints_as_the_admin_pass_the_role_check(
    gateway: httpx.AsyncClient, people: Any
) -> None:
    """The same calls as the admin get past authorization (404 unknown id, 422 empty body)."""
    admin = await people.admin()
    for method, path in ADMIN_ENDPOINTS:
        response = await gateway.request(method, path, headers=admin.headers, json={})
        assert response.status_code in (404, 422), (method, path, response.text)


async def own_notification(gateway: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        items = (await gateway.get("/api/notifications/notifications", headers=headers)).json()["items"]
        return items[0] if items else None

    return await wait_until(listed, within=20, interval=0.2, what="the welcome notification")


async def test_another_users_ids_are_404_for_every_endpoint_with_an_id(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    owner, stranger = await people.user(), await people.user()
    booking = await people.pending_booking(owner)
    key = {"Idempotency-Key": f"authz-{uuid.uuid4().hex}"}
    body = {"booking_id": booking["id"], "payment_method": "credit_card"}
    paid = await gateway.post("/api/payments/process", json=body, headers={**owner.headers, **key})
    assert paid.status_code == 201, paid.text
    notification = await own_notification(gateway, owner.headers)
    reads = [
        ("GET", f"/api/bookings/bookings/{booking['id']}"),
        ("GET", f"/api/payments/payments/{paid.json()['id']}"),
        ("GET", f"/api/notifications/notifications/{notification['id']}"),
    ]
    writes = [
        ("POST", f"/api/bookings/bookings/{booking['id']}/cancel"),
        ("POST", f"/api/payments/payments/{paid.json()['id']}/refund"),
    ]
    for method, path in reads + writes:
        json_error(await gateway.request(method, path, headers=stranger.headers), 404)
    stolen = await gateway.post("/api/payments/process", json=body, headers=stranger.headers)
    json_error(stolen, 404)
    for method, path in reads:
        assert (await gateway.request(method, path, headers=owner.headers)).status_code == 200, path
    for path in ["/api/bookings/bookings", "/api/payments/payments", "/api/notifications/notifications"]:
        listed = (await gateway.get(path, headers=stranger.headers)).json()
        assert all(item.get("user_id", stranger.user_id) == stranger.user_id for item in listed["items"])
        assert booking["id"] not in str(listed) and paid.json()["id"] not in str(listed)
