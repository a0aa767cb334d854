"""The process-local caches, old against new, in one process: a hit, and misses sharing a load.

    .venv/bin/python scripts/benchmark/local_cache.py [--baseline REV] [--rounds 7]

Compares, on uvloop as the services run, each cache user as it is now (on
``servicekit.cache.LocalCache``) with the same code at ``--baseline`` (by default the
commit before the one that removed ``servicekit/lru.py``: the hand-written LRU and the
two hand-written de-duplications), loaded from git into this process:

- booking's showtime catalog (``POST /book`` asks it on every booking): a fresh hit; and
  misses, 50 concurrent callers of one stale showtime sharing one load (Redis and
  movie-service replaced by stand-ins that answer at once, so the cache's own work shows);
- movie's seat statuses (every seat-map request): the same two;
- servicekit's verified access tokens (every authenticated request): a hit.

Each measurement alternates old and new ``--rounds`` times and keeps each one's best round
(the least disturbed by the machine). Prints microseconds per call (per caller for the
misses). Nothing external is used: no database, Redis or network.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[2]
LRU_PATH = "services/servicekit/servicekit/lru.py"
CALLERS = 50


def _default_baseline() -> str:
    removed = subprocess.run(
        ["git", "rev-list", "-1", "HEAD", "--", LRU_PATH],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{removed}^"


def _module_at(rev: str, path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as it was at ``rev``, imported under ``name``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102  # our own history
    return module


def load_baseline(rev: str) -> dict[str, types.ModuleType]:
    """The old modules; the old catalog and security import ``servicekit.lru``, gone since."""
    _module_at(rev, LRU_PATH, "servicekit.lru")
    return {
        "catalog": _module_at(rev, "services/booking-service/booking_service/catalog.py", "old_catalog"),
        "seat_status": _module_at(
            rev, "services/movie-service/movie_service/seat_status.py", "old_seat_status"
        ),
        "security": _module_at(rev, "services/servicekit/servicekit/security.py", "old_security"),
    }


class InstantRedis:
    """Answers the showtime's text at once (after one turn of the loop, as a reply would)."""

    def __init__(self, raw: str) -> None:
        self.raw = raw

    async def get(self, _key: str) -> str:
        await asyncio.sleep(0)
        return self.raw


class InstantClient:
    """A ServiceClient stand-in answering one body at once (after one turn of the loop)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def request(self, _method: str, _path: str, **_: Any) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(200, content=self.body)


def showtime_text(showtime_id: uuid.UUID, seats: int = 200) -> str:
    rows = [
        {
            "seat_id": f"R{n // 20}-{n % 20}",
            "row": f"R{n // 20}",
            "number": n % 20,
            "tier": "standard",
            "price": 1,
        }
        for n in range(seats)
    ]
    return httpx.Response(
        200,
        json={
            "showtime_id": str(showtime_id),
            "movie_title": "Film",
            "theater_name": "Cinema",
            "auditorium_name": "Hall",
            "starts_at": "2030-01-01T18:00:00Z",
            "ends_at": "2030-01-01T20:00:00Z",
            "currency": "VND",
            "seats": rows,
        },
    ).text


def seat_status_body(showtime_id: uuid.UUID) -> bytes:
    seats = [f"R{n // 20}-{n % 20}" for n in range(60)]
    body = {"showtime_id": str(showtime_id), "held": seats[:20], "booked": seats[20:]}
    return httpx.Response(200, json=body).content


async def per_hit(get: Callable[[], Awaitable[Any]], calls: int) -> float:
    await get()  # loaded, then fresh
    started = time.perf_counter()
    for _ in range(calls):
        await get()
    return (time.perf_counter() - started) / calls * 1e6


async def per_shared_miss(get: Callable[[], Awaitable[Any]], rounds: int) -> float:
    await get()  # loaded once: the misses below find it stale
    started = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(get() for _ in range(CALLERS)))
    return (time.perf_counter() - started) / (rounds * CALLERS) * 1e6


def catalog_getters(old: types.ModuleType, fresh_seconds: float) -> tuple[Any, Any]:
    from booking_service import catalog as new
    from booking_service.config import BookingSettings
    from servicekit.testing import test_settings_overrides

    overrides = test_settings_overrides(
        "booking_service", "booking", showtime_local_cache_seconds=fresh_seconds
    )
    settings = BookingSettings(**overrides)
    showtime_id = uuid.uuid4()
    redis = InstantRedis(showtime_text(showtime_id))
    catalogs = [module.ShowtimeCatalog(None, redis, settings) for module in (old, new)]  # type: ignore[arg-type]
    return tuple(lambda c=c: c.get(showtime_id) for c in catalogs)  # type: ignore[return-value]


def seat_status_getters(old: types.ModuleType, ttl: float) -> tuple[Any, Any]:
    from movie_service import seat_status as new

    showtime_id = uuid.uuid4()
    client = InstantClient(seat_status_body(showtime_id))
    readers = [module.SeatStatusReader(client, ttl) for module in (old, new)]
    return tuple(lambda r=r: r.get(showtime_id) for r in readers)  # type: ignore[return-value]


def token_getters(old: types.ModuleType) -> tuple[Any, Any]:
    from servicekit import security as new
    from servicekit.config import ServiceSettings
    from servicekit.testing import mint_token

    settings = ServiceSettings()
    token = mint_token(settings)
    verifiers = [module.AccessTokens(settings) for module in (old, new)]

    def getter(verifier: Any) -> Callable[[], Awaitable[Any]]:
        async def principal() -> Any:
            return verifier.principal(token)

        return principal

    return getter(verifiers[0]), getter(verifiers[1])


async def best_of(
    rounds: int, measure: Callable[[Any], Awaitable[float]], getters: tuple[Any, Any]
) -> list[float]:
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, get in enumerate(getters):
            best[side] = min(best[side], await measure(get))
    return best


async def run(baseline: dict[str, types.ModuleType], rounds: int) -> list[tuple[str, list[float]]]:
    catalog, seats, security = baseline["catalog"], baseline["seat_status"], baseline["security"]
    cases: list[tuple[str, Callable[[Any], Awaitable[float]], tuple[Any, Any]]] = [
        ("catalog: hit", lambda g: per_hit(g, 200_000), catalog_getters(catalog, 3600)),
        (f"catalog: miss, {CALLERS} callers", lambda g: per_shared_miss(g, 400), catalog_getters(catalog, 0)),
        ("seat statuses: hit", lambda g: per_hit(g, 200_000), seat_status_getters(seats, 3600)),
        (
            f"seat statuses: miss, {CALLERS} callers",
            lambda g: per_shared_miss(g, 400),
            seat_status_getters(seats, 0),
        ),
        ("access token: hit", lambda g: per_hit(g, 200_000), token_getters(security)),
    ]
    return [(name, await best_of(rounds, measure, getters)) for name, measure, getters in cases]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=None, help="git revision of the old code")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rev = args.baseline or _default_baseline()
    results = uvloop.run(run(load_baseline(rev), args.rounds))
    sys.stdout.write(f"baseline {rev}; best of {args.rounds} rounds; microseconds per call\n")
    sys.stdout.write(f"{'':<32}{'old':>9}{'new':>9}{'new/old':>9}\n")
    for name, (old, new) in results:
        sys.stdout.write(f"{name:<32}{old:>9.2f}{new:>9.2f}{new / old:>9.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
