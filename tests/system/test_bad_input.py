"""Bad input and abuse through the gateway: every bad request is a 4xx in the one JSON error shape.

Malformed JSON, wrong content types, huge bodies, bad UUIDs, unicode, NUL characters and
SQL-looking strings, negative and absurd numbers, mass-assignment fields; the gateway's own
errors, its closed internal/metrics routes, and X-Request-ID. Needs the running system
(``scripts/test.sh``; ``GATEWAY_URL``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.system

SERVICES = ["auth", "movies", "bookings", "payments", "notifications"]
JSON_WRITES = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/bookings/book"),
    ("POST", "/api/payments/process"),
    ("PUT", "/api/notifications/preferences"),
]
ID_READS = [
    "/api/movies/movies/{}",
    "/api/movies/auditoriums/{}",
    "/api/movies/showtimes/{}/seats",
    "/api/bookings/bookings/{}",
    "/api/payments/payments/{}",
    "/api/notifications/notifications/{}",
]
BAD_IDS = ["not-a-uuid", "123", "' OR '1'='1", "00000000-0000-0000-0000-00000000000g", "%F0%9F%8E%AC"]
LISTS = [
    "/api/movies/movies",
    "/api/movies/showtimes",
    "/api/movies/theaters",
    "/api/bookings/bookings",
    "/api/payments/payments",
    "/api/notifications/notifications",
]
ABSURD_PAGES = [
    {"limit": -1},
    {"limit": 0},
    {"limit": 10**30},
    {"offset": -5},
    {"offset": 10**20},
    {"limit": "ten"},
]
TEXT_FILTERS = ["' OR 1=1; DROP TABLE movies; --", "Ώρα 🎬 映画", "\x00", "a\x00b", "%", "_", "\\"]


async def test_malformed_json_is_a_4xx_json_error(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    user = await people.user()
    headers = {**user.headers, "Content-Type": "application/json"}
    for method, path in JSON_WRITES:
        for body in [b"{", b'{"a": }', b"[1, 2", b"\xff\xfe\x00", b"null", b"42", b'"text"']:
            response = await gateway.request(method, path, content=body, headers=headers)
            assert 400 <= response.status_code < 500, (method, path, body, response.text)
            json_error(response, response.status_code)


async def test_wrong_content_types_are_refused(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    user = await people.user()
    for method, path in JSON_WRITES:
        for content_type, body in [
            ("text/plain", b'{"x": 1}'),
            ("application/x-www-form-urlencoded", b"showtime_id=1&seat_ids=A1"),
            ("application/xml", b"<book><seat>A1</seat></book>"),
        ]:
            headers = {**user.headers, "Content-Type": content_type}
            response = await gateway.request(method, path, content=body, headers=headers)
            json_error(response, 422)
    token = await gateway.post("/api/auth/token", json={"username": user.username, "password": "x"})
    json_error(token, 422)  # the token endpoint takes an OAuth2 form, not JSON


async def test_huge_bodies_are_413_json_at_the_gateway(gateway: httpx.AsyncClient, json_error: Any) -> None:
    huge = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    for path in ["/api/auth/register", "/api/bookings/book", "/api/payments/process"]:
        response = await gateway.post(path, content=huge, headers={"Content-Type": "application/json"})
        error = json_error(response, 413)
        assert error["code"] == "payload_too_large"


async def test_bad_uuids_in_paths_are_422(gateway: httpx.AsyncClient, people: Any, json_error: Any) -> None:
    user = await people.user()
    for template in ID_READS:
        for bad in BAD_IDS:
            response = await gateway.get(template.format(bad), headers=user.headers)
            json_error(response, 422)
    for bad in BAD_IDS:
        cancel = await gateway.post(f"/api/bookings/bookings/{bad}/cancel", headers=user.headers)
        json_error(cancel, 422)
        refund = await gateway.post(f"/api/payments/payments/{bad}/refund", headers=user.headers)
        json_error(refund, 422)


async def test_a_nul_in_the_path_is_refused_by_the_gateway(
    gateway: httpx.AsyncClient, json_error: Any
) -> None:
    """NGINX refuses this while reading the request line, before any location runs: its error
    page is an internal URI, not a named location (NGINX has no URI to go on with there)."""
    json_error(await gateway.get("/api/movies/movies/%00"), 400)


async def test_absurd_page_parameters_are_422(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    user = await people.user()
    for path in LISTS:
        for params in ABSURD_PAGES:
            response = await gateway.get(path, params=params, headers=user.headers)
            json_error(response, 422)


async def test_unicode_nul_and_sql_looking_filters_never_break_the_catalog(
    gateway: httpx.AsyncClient, json_error: Any
) -> None:
    for text in TEXT_FILTERS:
        for path, name in [
            ("/api/movies/movies", "q"),
            ("/api/movies/movies", "genre"),
            ("/api/movies/theaters", "city"),
            ("/api/movies/showtimes", "city"),
        ]:
            response = await gateway.get(path, params={name: text})
            if response.status_code != 200:
                json_error(response, 422)
            elif "\x00" not in text:
                assert response.json()["total"] == 0, (path, name, text)
    movies = await gateway.get("/api/movies/movies", params={"limit": 1})
    assert movies.status_code == 200 and movies.json()["total"] > 0, "the catalog is still there"


async def test_unicode_and_nul_in_user_text_are_stored_or_refused_never_a_500(
    gateway: httpx.AsyncClient, json_error: Any
) -> None:
    name = f"uni{uuid.uuid4().hex[:10]}"
    body = {
        "email": f"{name}@example.com",
        "username": name,
        "password": "Abuse-Case-Pass-42",
        "full_name": "Nguyễn Thị 🎬 '; DROP TABLE users; --",
    }
    created = await gateway.post("/api/auth/register", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["full_name"] == body["full_name"]
    nul_name = f"nul{uuid.uuid4().hex[:10]}"
    with_nul = {**body, "email": f"{nul_name}@example.com", "username": nul_name, "full_name": "a\x00b"}
    json_error(await gateway.post("/api/auth/register", json=with_nul), 422)
    login = await gateway.post("/api/auth/token", data={"username": "a\x00b", "password": "whatever-long"})
    json_error(login, 422)


async def test_bad_booking_bodies_are_422(gateway: httpx.AsyncClient, people: Any, json_error: Any) -> None:
    user = await people.user()
    showtime = (await gateway.get("/api/movies/showtimes", params={"limit": 1})).json()["items"][0]["id"]
    for body in [
        {"showtime_id": showtime, "seat_ids": []},
        {"showtime_id": showtime, "seat_ids": ["A1", "A1"]},
        {"showtime_id": showtime, "seat_ids": [f"A{n}" for n in range(1, 500)]},
        {"showtime_id": showtime, "seat_ids": ["Ж1", "A1'; DROP TABLE bookings; --"]},
        {"showtime_id": showtime, "seat_ids": ["A\x001"]},
        {"showtime_id": showtime, "seat_ids": [-1, 10**40]},
        {"showtime_id": showtime, "seat_ids": "A1"},
        {"showtime_id": "not-a-uuid", "seat_ids": ["A1"]},
        {"seat_ids": ["A1"]},
    ]:
        response = await gateway.post("/api/bookings/book", json=body, headers=user.headers)
        json_error(response, 422)


async def test_bad_payment_bodies_are_4xx(gateway: httpx.AsyncClient, people: Any, json_error: Any) -> None:
    user = await people.user()
    booking = await people.pending_booking(user)
    base = {"booking_id": booking["id"], "payment_method": "credit_card"}
    for extra in [
        {"amount": -1},
        {"amount": 10**30},
        {"amount": booking["total_amount"] + 1},
        {"amount": "free"},
        {"payment_method": "bitcoin\x00"},
        {"payment_method": "' OR 1=1 --"},
        {"card_number": "4242 4242 4242 4242 " * 20},
        {"booking_id": "not-a-uuid"},
    ]:
        key = {"Idempotency-Key": f"bad-{uuid.uuid4().hex}"}
        response = await gateway.post(
            "/api/payments/process", json={**base, **extra}, headers={**user.headers, **key}
        )
        json_error(response, 422)
    for key in [b"", b"x" * 300, b"spaces are not allowed", "ключ".encode()]:
        headers = {**user.headers, "Idempotency-Key": key}
        response = await gateway.post("/api/payments/process", json=base, headers=headers)
        json_error(response, 422)
    booked = await gateway.get(f"/api/bookings/bookings/{booking['id']}", headers=user.headers)
    assert booked.json()["status"] == "pending", "no bad request charged the booking"


async def test_mass_assignment_fields_are_ignored(gateway: httpx.AsyncClient, people: Any) -> None:
    name = f"mass{uuid.uuid4().hex[:10]}"
    body = {
        "email": f"{name}@example.com",
        "username": name,
        "password": "Abuse-Case-Pass-42",
        "roles": ["admin"],
        "is_active": False,
        "id": str(uuid.uuid4()),
        "password_hash": "x",
    }
    created = await gateway.post("/api/auth/register", json=body)
    assert created.status_code == 201, created.text
    user_out = created.json()
    assert user_out["roles"] == ["user"] and user_out["is_active"] is True and user_out["id"] != body["id"]
    assert "password_hash" not in user_out and "password" not in user_out


async def test_booking_ignores_user_id_amount_and_status_from_the_client(
    gateway: httpx.AsyncClient, people: Any
) -> None:
    user, other = await people.user(), await people.user()
    showtime = (await gateway.get("/api/movies/showtimes", params={"limit": 100})).json()["items"][-1]
    seat_map = (await gateway.get(f"/api/movies/showtimes/{showtime['id']}/seats")).json()
    seat = next(s for s in seat_map["seats"] if s["status"] == "available")
    body = {
        "showtime_id": showtime["id"],
        "seat_ids": [seat["seat_id"]],
        "user_id": other.user_id,
        "total_amount": 1,
        "status": "confirmed",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    response = await gateway.post("/api/bookings/book", json=body, headers=user.headers)
    if response.status_code == 422:
        return  # refusing unknown fields is as good as ignoring them
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "pending" and booking["total_amount"] == seat["price"]
    assert (
        await gateway.get(f"/api/bookings/bookings/{booking['id']}", headers=user.headers)
    ).status_code == 200
    assert (
        await gateway.get(f"/api/bookings/bookings/{booking['id']}", headers=other.headers)
    ).status_code == 404


async def test_payment_ignores_user_id_and_status_from_the_client(
    gateway: httpx.AsyncClient, people: Any
) -> None:
    user, other = await people.user(), await people.user()
    booking = await people.pending_booking(user)
    body = {
        "booking_id": booking["id"],
        "payment_method": "credit_card",
        "amount": booking["total_amount"],
        "user_id": other.user_id,
        "status": "refunded",
        "currency": "USD",
    }
    headers = {**user.headers, "Idempotency-Key": f"mass-{uuid.uuid4().hex}"}
    paid = await gateway.post("/api/payments/process", json=body, headers=headers)
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["status"] == "succeeded" and payment["amount"] == booking["total_amount"]
    assert payment["currency"] == booking["currency"]
    assert (
        await gateway.get(f"/api/payments/payments/{payment['id']}", headers=other.headers)
    ).status_code == 404


async def test_preferences_of_one_user_never_touch_another(gateway: httpx.AsyncClient, people: Any) -> None:
    user, other = await people.user(), await people.user()
    body = {"email": False, "sms": True, "phone_number": "+84 912 345 678", "user_id": other.user_id}
    saved = await gateway.put("/api/notifications/preferences", json=body, headers=user.headers)
    assert saved.status_code in (200, 422), saved.text  # ignored or refused, never applied
    theirs = (await gateway.get("/api/notifications/preferences", headers=other.headers)).json()
    assert theirs["email"] is True and theirs["sms"] is False


async def test_unknown_routes_are_the_gateways_json_404(gateway: httpx.AsyncClient, json_error: Any) -> None:
    for path in ["/api/nope", "/api/unknown/thing", "/api/", "/api/bookingsx/book"]:
        response = await gateway.get(path)
        error = json_error(response, 404)
        assert error["request_id"] == response.headers["X-Request-ID"]


async def test_internal_and_metrics_routes_are_not_reachable_through_the_gateway(
    gateway: httpx.AsyncClient, json_error: Any
) -> None:
    internal_headers = {"X-Internal-Token": "dev-only-internal-token"}
    for service in SERVICES:
        for path in [
            f"/api/{service}/metrics",
            f"/api/{service}/metrics/",
            f"/api/{service}/internal/bookings/{uuid.uuid4()}",
            f"/api/{service}/internal/showtimes/{uuid.uuid4()}",
            f"/api/{service}//internal/showtimes/{uuid.uuid4()}",
            f"/api/{service}/./metrics",
            f"/api/{service}/%69nternal/showtimes/{uuid.uuid4()}",
            f"/api/{service}/%6Detrics",
        ]:
            response = await gateway.get(path, headers=internal_headers)
            json_error(response, 404)
            assert "http_requests_total" not in response.text


async def test_x_request_id_is_echoed_and_reaches_the_service(
    gateway: httpx.AsyncClient, people: Any, json_error: Any
) -> None:
    user = await people.user()
    request_id = f"abuse-{uuid.uuid4().hex}"
    response = await gateway.get(
        f"/api/bookings/bookings/{uuid.uuid4()}", headers={**user.headers, "X-Request-ID": request_id}
    )
    assert response.headers["X-Request-ID"] == request_id
    assert json_error(response, 404)["request_id"] == request_id
    made_up = await gateway.get("/health", headers={"X-Request-ID": "bad id with spaces<script>"})
    assert made_up.status_code == 200
    assert made_up.headers["X-Request-ID"] and "<" not in made_up.headers["X-Request-ID"]


async def test_wrong_methods_are_405_json(gateway: httpx.AsyncClient, json_error: Any) -> None:
    for method, path in [
        ("DELETE", "/api/bookings/book"),
        ("GET", "/api/payments/process"),
        ("PATCH", "/api/auth/register"),
    ]:
        json_error(await gateway.request(method, path), 405)
