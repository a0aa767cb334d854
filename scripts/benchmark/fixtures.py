"""What the benchmark needs before any timing: its own showtimes and logged-in users.

Showtimes are created through movie-service's admin API (the bootstrap admin account),
in a theater of their own per run, so runs never collide. Users are registered and
logged in through the gateway; argon2 makes that slow on purpose, so the accounts
(username, password, refresh token) are kept in ``<run dir>/benchmark-users.json`` and
the next run against the same database only refreshes their tokens.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from report import say

PASSWORD = "Bench-Mark-Pass-2026"
# seats per showtime -> layout (a row holds at most 200 seats)
LAYOUTS = {
    100: {"rows": [{"seats": 10}] * 10},
    1000: {"rows": [{"seats": 100}] * 10},
    10000: {"rows": [{"seats": 200}] * 50},
}
# showtime name -> the auditorium size it is played in
SHOWTIMES = {
    "map100": 100,
    "race": 100,
    "map1000": 1000,
    "map10000": 10000,
    "distinct": 10000,
    "flow": 10000,
    "rows10k": 10000,
    "rows1m": 10000,
}


async def admin_headers(api: httpx.AsyncClient, password: str) -> dict[str, str]:
    response = await api.post("/api/auth/token", data={"username": "admin", "password": password})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _create(api: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = await api.post(path, json=body, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path} -> {response.status_code} {response.text[:300]}")
    return str(response.json()["id"])


async def create_programme(
    api: httpx.AsyncClient, headers: dict[str, str], run_id: str, wanted: dict[str, int] = SHOWTIMES
) -> dict[str, str]:
    """A theater, a movie, an auditorium per size and the ``wanted`` showtimes ({name: seats},
    each size one of LAYOUTS'): {name: showtime id}."""
    theater = await _create(
        api,
        headers,
        "/api/movies/theaters",
        {"name": f"Bench {run_id}", "city": "Benchville", "time_zone": "UTC"},
    )
    movie = await _create(
        api, headers, "/api/movies/movies", {"title": f"Benchmark {run_id}", "duration_minutes": 60}
    )
    auditoriums = {
        size: await _create(
            api,
            headers,
            "/api/movies/auditoriums",
            {"theater_id": theater, "name": f"{size} seats", "layout": layout},
        )
        for size, layout in LAYOUTS.items()
        if size in wanted.values()
    }
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    showtimes: dict[str, str] = {}
    for index, (name, size) in enumerate(wanted.items()):
        body = {
            "movie_id": movie,
            "auditorium_id": auditoriums[size],
            "starts_at": (first + timedelta(hours=3 * index)).isoformat(),
            "prices": {"standard": 90000},
        }
        showtimes[name] = await _create(api, headers, "/api/movies/showtimes", body)
    return showtimes


async def seat_ids(api: httpx.AsyncClient, showtime_id: str) -> list[str]:
    response = await api.get(f"/api/movies/showtimes/{showtime_id}/seats")
    response.raise_for_status()
    return [seat["seat_id"] for seat in response.json()["seats"]]


def load_accounts(cache: Path, count: int) -> list[dict[str, str]]:
    """``count`` accounts: those of earlier runs first, then new names."""
    accounts: list[dict[str, str]] = json.loads(cache.read_text()) if cache.exists() else []
    return accounts[:count] + [
        {"username": f"bench{uuid.uuid4().hex[:12]}"} for _ in range(count - len(accounts))
    ]


def save_accounts(cache: Path, accounts: list[dict[str, str]]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(accounts, indent=1))


async def users(api: httpx.AsyncClient, accounts: list[dict[str, str]]) -> list[str]:
    """Access tokens of the accounts: cached ones refreshed, missing ones registered and logged in."""
    gate = asyncio.Semaphore(8)  # argon2 is CPU-bound: more at once only queues in auth's thread pool
    done = 0

    async def sign_in(account: dict[str, str]) -> str:
        nonlocal done
        async with gate:
            token = await _token(api, account)
        done += 1
        if done % 25 == 0 or done == len(accounts):
            say(f"  users ready: {done}/{len(accounts)}")
        return token

    return list(await asyncio.gather(*(sign_in(account) for account in accounts)))


async def _token(api: httpx.AsyncClient, account: dict[str, str]) -> str:
    """Refresh a cached account's token; otherwise register (or find) it and log in."""
    if "refresh_token" in account:
        response = await api.post("/api/auth/refresh", json={"refresh_token": account["refresh_token"]})
        if response.status_code == 200:
            return _keep(account, response.json())
    name = account["username"]
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    registered = await api.post("/api/auth/register", json=body)
    if registered.status_code not in (201, 409):
        raise RuntimeError(f"register {name}: {registered.status_code} {registered.text[:200]}")
    response = await api.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"log in {name}: {response.status_code} {response.text[:200]}")
    return _keep(account, response.json())


def _keep(account: dict[str, str], tokens: dict[str, Any]) -> str:
    account["refresh_token"] = str(tokens["refresh_token"])
    return str(tokens["access_token"])
