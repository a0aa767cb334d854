"""Admins grant and revoke the staff role; tokens carry it from the next one issued."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from auth_service.config import AuthSettings
from servicekit.testing import mint_token

Builder = Callable[..., Awaitable[dict[str, Any]]]


def _bearer(settings: AuthSettings, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, roles=('user', *roles))}"}


@pytest.fixture
def admin(settings: AuthSettings) -> dict[str, str]:
    return _bearer(settings, "admin")


async def _roles_in_a_new_token(client: httpx.AsyncClient, login: Builder, username: str) -> list[str]:
    token = (await login(username))["access_token"]
    verified = await client.get("/verify", headers={"Authorization": f"Bearer {token}"})
    return list(verified.json()["roles"])


async def test_an_admin_grants_staff_once_and_the_next_token_carries_it(
    client: httpx.AsyncClient, register: Builder, login: Builder, admin: dict[str, str]
) -> None:
    user = await register()
    before = (await login(user["username"]))["access_token"]
    for _ in range(2):  # idempotent
        granted = await client.post(f"/users/{user['id']}/roles", json={"role": "staff"}, headers=admin)
        assert granted.status_code == 200, granted.text
        assert granted.json()["roles"] == ["user", "staff"]
    assert await _roles_in_a_new_token(client, login, user["username"]) == ["user", "staff"]
    old = await client.get("/verify", headers={"Authorization": f"Bearer {before}"})
    assert old.json()["roles"] == ["user"], "a token already issued keeps the roles it was issued with"


async def test_an_admin_revokes_staff_idempotently(
    client: httpx.AsyncClient, register: Builder, login: Builder, admin: dict[str, str]
) -> None:
    user = await register()
    await client.post(f"/users/{user['id']}/roles", json={"role": "staff"}, headers=admin)
    for _ in range(2):
        revoked = await client.delete(f"/users/{user['id']}/roles/staff", headers=admin)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["roles"] == ["user"]
    assert await _roles_in_a_new_token(client, login, user["username"]) == ["user"]


async def test_concurrent_grants_give_the_role_once(
    client: httpx.AsyncClient, register: Builder, admin: dict[str, str]
) -> None:
    user = await register()
    url = f"/users/{user['id']}/roles"
    grants = [client.post(url, json={"role": "staff"}, headers=admin) for _ in range(8)]
    answers = await asyncio.gather(*grants)
    assert {a.status_code for a in answers} == {200}
    assert {tuple(a.json()["roles"]) for a in answers} == {("user", "staff")}


async def test_only_admins_change_roles(
    client: httpx.AsyncClient, register: Builder, settings: AuthSettings
) -> None:
    user = await register()
    url = f"/users/{user['id']}/roles"
    assert (await client.post(url, json={"role": "staff"})).status_code == 401
    for caller in (_bearer(settings), _bearer(settings, "staff")):
        refused = await client.post(url, json={"role": "staff"}, headers=caller)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert (await client.delete(f"{url}/staff", headers=caller)).status_code == 403


async def test_an_unknown_user_is_404_and_a_role_that_cannot_be_granted_is_422(
    client: httpx.AsyncClient, register: Builder, admin: dict[str, str]
) -> None:
    nobody = f"/users/{uuid.uuid4()}/roles"
    assert (await client.post(nobody, json={"role": "staff"}, headers=admin)).status_code == 404
    assert (await client.delete(f"{nobody}/staff", headers=admin)).status_code == 404
    user = await register()
    url = f"/users/{user['id']}/roles"
    for role in ("admin", "user", "janitor", ""):
        refused = await client.post(url, json={"role": role}, headers=admin)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"
    assert (await client.delete(f"{url}/admin", headers=admin)).status_code == 422
    assert (await client.post(url, json={}, headers=admin)).status_code == 422
