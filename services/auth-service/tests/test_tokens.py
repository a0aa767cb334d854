from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from auth_service.config import AuthSettings
from servicekit.testing import mint_token

Builder = Callable[..., Awaitable[dict[str, Any]]]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _tokens(register: Builder, login: Builder) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await register()
    return user, await login(user["username"])


async def test_verify_and_me_return_the_caller(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    user, tokens = await _tokens(register, login)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    verified = (await client.get("/verify", headers=headers)).json()
    assert verified == {
        "user_id": user["id"],
        "username": user["username"],
        "email": user["email"],
        "roles": ["user"],
    }
    me = await client.get("/me", headers=headers)
    assert me.status_code == 200 and me.json()["id"] == user["id"]


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/verify")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    return f"{header}.{_b64(claims)}.{signature}"


def _alg_none(token: str) -> str:
    _, payload, _ = token.split(".")
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


@pytest.mark.parametrize(
    "forge",
    ["tampered", "alg_none", "expired", "wrong_aud", "wrong_iss", "wrong_key", "refresh_typ", "future_iat"],
)
async def test_bad_tokens_are_401(
    client: httpx.AsyncClient, settings: AuthSettings, register: Builder, login: Builder, forge: str
) -> None:
    _, tokens = await _tokens(register, login)
    good = tokens["access_token"]
    forged = {
        "tampered": lambda: _tampered(good),
        "alg_none": lambda: _alg_none(good),
        "expired": lambda: mint_token(settings, expires_in=timedelta(seconds=-5)),
        "wrong_aud": lambda: mint_token(settings, aud="someone-else"),
        "wrong_iss": lambda: mint_token(settings, iss="evil-issuer"),
        "wrong_key": lambda: mint_token(settings.model_copy(update={"jwt_secret": _secret("x" * 40)})),
        "refresh_typ": lambda: mint_token(settings, typ="refresh"),
        # issued ten minutes from now (valid for 15), far past the allowed clock skew
        "future_iat": lambda: mint_token(settings, iat=int(time.time()) + 600),
    }[forge]()
    response = await client.get("/verify", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401, forge
    assert response.json()["error"]["code"] == "unauthorized"


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def test_a_valid_minted_token_is_accepted(client: httpx.AsyncClient, settings: AuthSettings) -> None:
    """The control for the forgeries above: the same minting with the right key passes."""
    token = mint_token(settings, user_id=uuid.uuid4())
    assert (await client.get("/verify", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_refresh_rotates_and_old_token_stops_working(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    _, tokens = await _tokens(register, login)
    first = await client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    again = await client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    # reuse of a revoked token revokes the whole family, the rotated one included
    after_reuse = await client.post("/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after_reuse.status_code == 401


async def test_logout_revokes_the_refresh_token(
    client: httpx.AsyncClient, register: Builder, login: Builder
) -> None:
    _, tokens = await _tokens(register, login)
    assert (await client.post("/logout", json={"refresh_token": tokens["refresh_token"]})).status_code == 204
    assert (await client.post("/logout", json={"refresh_token": tokens["refresh_token"]})).status_code == 204
    refreshed = await client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401


async def test_bootstrap_admin_can_log_in_with_admin_role(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    assert settings.admin_password is not None
    response = await client.post(
        "/token", data={"username": "admin", "password": settings.admin_password.get_secret_value()}
    )
    assert response.status_code == 200
    verified = await client.get(
        "/verify", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert "admin" in verified.json()["roles"]
