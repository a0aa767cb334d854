from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

PASSWORD = "Correct-Horse-42"  # the password the register fixture uses
Builder = Callable[..., Awaitable[dict[str, Any]]]


async def test_register_returns_user_without_secrets(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user = await register(full_name="Ann Lee", phone_number="+84 912 345 678")
    assert user["roles"] == ["user"]
    assert user["full_name"] == "Ann Lee"
    assert "password_hash" not in user and "hash" not in str(user)


async def test_fields_a_client_must_not_set_are_ignored(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    forced_id = str(uuid.uuid4())
    user = await register(roles=["admin"], role="admin", id=forced_id, is_active=False)
    assert user["roles"] == ["user"] and user["is_active"] is True and user["id"] != forced_id


async def test_duplicate_email_or_username_is_409(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user = await register()
    again = {
        "email": user["email"].upper(),
        "username": "other" + uuid.uuid4().hex[:6],
        "password": PASSWORD,
    }
    response = await client.post("/register", json=again)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == ["email"]
    same_name = {
        "email": f"x{uuid.uuid4().hex[:6]}@example.com",
        "username": user["username"],
        "password": PASSWORD,
    }
    assert (await client.post("/register", json=same_name)).status_code == 409


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("password", "short1!"),
        ("password", "x" * 129),
        ("password", "Password123!"),
        ("password", "aaaaaaaaaa"),
        ("username", "a"),
        ("username", "bad name; drop table"),
    ],
)
async def test_bad_registration_is_422(
    client: httpx.AsyncClient, register: Builder, login: Builder, field: str, value: str
) -> None:
    body = {
        "email": f"v{uuid.uuid4().hex[:8]}@example.com",
        "username": f"v{uuid.uuid4().hex[:8]}",
        "password": PASSWORD,
    }
    body[field] = value
    response = await client.post("/register", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["message"]


@pytest.mark.parametrize(
    ("password", "named"),
    [
        ("{username}", "username"),  # the same as the username
        ("My-{USERNAME}-42", "username"),  # contains it, in another case
        ("Secret-{local}-9", "email"),  # contains the email's local part
    ],
)
async def test_a_password_with_the_username_or_email_name_in_it_is_422(
    client: httpx.AsyncClient, password: str, named: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    username, local = f"fan{suffix}", f"mail{suffix}"
    body = {
        "email": f"{local}@example.com",
        "username": username,
        "password": password.format(username=username, USERNAME=username.upper(), local=local),
    }
    response = await client.post("/register", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("password:") and named in error["message"]


async def test_an_email_name_shorter_than_three_characters_is_not_looked_for(
    client: httpx.AsyncClient,
) -> None:
    """A local part like "jo" would refuse every password with "jo" in it: under 3 characters, skipped."""
    suffix = uuid.uuid4().hex[:8]
    body = {"email": f"jo@{suffix}.example.com", "username": f"fan{suffix}", "password": "Jolly-Good-42"}
    response = await client.post("/register", json=body)
    assert response.status_code == 201, response.text


async def test_malformed_json_is_422_not_500(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    response = await client.post(
        "/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_login_by_username_or_email(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user = await register()
    by_name = await login(user["username"])
    by_email = await login(user["email"])
    assert by_name["token_type"] == "bearer" and by_name["expires_in"] > 0
    assert by_email["refresh_token"] != by_name["refresh_token"]


async def test_wrong_password_and_unknown_user_look_the_same(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user = await register()
    wrong = await client.post("/token", data={"username": user["username"], "password": "Nope-nope-99"})
    unknown = await client.post(
        "/token", data={"username": "ghost" + uuid.uuid4().hex[:6], "password": "Nope-nope-99"}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "request_id"}  # noqa: E731
    assert strip(wrong) == strip(unknown)


async def test_sixth_quick_failed_login_is_429_with_retry_after(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user = await register()
    for _ in range(5):
        response = await client.post(
            "/token", data={"username": user["username"], "password": "Wrong-pass-1"}
        )
        assert response.status_code == 401
    sixth = await client.post("/token", data={"username": user["username"], "password": PASSWORD})
    assert sixth.status_code == 429
    assert int(sixth.headers["retry-after"]) > 0
    assert sixth.json()["error"]["code"] == "too_many_requests"


async def _attempt(client: httpx.AsyncClient, identifier: str, password: str) -> int:
    # A new address for every try: a 429 here is the account's lock, never the address's.
    address = {"X-Real-IP": f"192.0.2.{uuid.uuid4().int % 250}"}
    data = {"username": identifier, "password": password}
    return (await client.post("/token", data=data, headers=address)).status_code


async def test_a_locked_account_is_locked_whichever_identifier_is_used(
    client: httpx.AsyncClient, register: Builder
) -> None:
    user = await register()
    spellings = [user["username"], user["email"].upper(), user["username"].upper(), user["email"]]
    failures = [await _attempt(client, i, "Wrong-pass-1") for i in [*spellings, user["username"]]]
    assert failures == [401] * 5  # five failures of one account, under four spellings
    for identifier in spellings:
        assert await _attempt(client, identifier, PASSWORD) == 429, identifier


async def test_a_successful_login_clears_the_account_count_for_every_identifier(
    client: httpx.AsyncClient, register: Builder
) -> None:
    user = await register()
    assert [await _attempt(client, user["email"], "Wrong-pass-1") for _ in range(4)] == [401] * 4
    assert await _attempt(client, user["username"], PASSWORD) == 200
    assert [await _attempt(client, user["email"], "Wrong-pass-1") for _ in range(4)] == [401] * 4


async def test_an_unknown_name_is_locked_like_an_account(client: httpx.AsyncClient) -> None:
    """No oracle: a name that is nobody's gets the same 401s, then the same 429."""
    ghost = "ghost" + uuid.uuid4().hex[:8]
    statuses = [await _attempt(client, ghost, "Wrong-pass-1") for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_many_failures_from_one_address_are_throttled_across_accounts() -> None:
    from auth_service.config import AuthSettings
    from auth_service.main import create_app
    from servicekit.testing import app_client, test_settings_overrides

    fast = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
    settings = AuthSettings(
        **test_settings_overrides("auth_service", "auth", login_max_failures_per_ip=3, **fast)
    )
    address = {"X-Real-IP": f"198.51.100.{uuid.uuid4().int % 250}"}
    async with app_client(create_app(settings)) as client:
        names = [f"ghost{uuid.uuid4().hex[:8]}" for _ in range(4)]
        statuses = [
            (
                await client.post("/token", data={"username": n, "password": "Wrong-pass-1"}, headers=address)
            ).status_code
            for n in names
        ]
        other = await client.post(
            "/token", data={"username": names[0], "password": "x"}, headers={"X-Real-IP": "203.0.113.9"}
        )
    assert statuses == [401, 401, 401, 429]
    assert other.status_code == 401  # another address is not affected
