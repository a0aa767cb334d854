"""Processes that die: movie-service down behind booking's breaker, and a service killed and
restarted under load behind the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from faultkit import Stack, User
from private_gateway import Gateway

from servicekit.testing import wait_until

HANG_SECONDS = 5.0  # every answer well inside the gateway's and clients' timeouts
TRUNCATED = 0  # an answer cut off by the kill (no status to record)


async def test_movie_service_down_booking_fails_fast_and_recovers_by_itself(
    stack: Stack, new_user: Callable[[], User]
) -> None:
    showtime = await stack.showtime()  # booking has never looked this one up: nothing cached
    movie, user = stack.services["movie"], new_user()
    body = {"showtime_id": showtime["id"], "seat_ids": ["A1"]}
    movie.kill()
    await asyncio.to_thread(movie.process.wait, 10)  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=stack.url("booking"), timeout=30) as client:
        timings = []
        for _ in range(6):
            started = time.monotonic()
            response = await client.post("/book", json=body, headers=user.headers)
            timings.append(time.monotonic() - started)
            assert response.status_code == 503, response.text
        assert max(timings) < 2.0, timings
        assert max(timings[-2:]) < 0.5, f"the breaker should answer at once when open: {timings}"
        assert await stack.metric("booking", "circuit_breaker_state") == 2, "booking's breaker is open"
        movie.start()
        await movie.wait_ready()

        async def booked() -> bool:
            response = await client.post("/book", json=body, headers=user.headers)
            assert response.status_code in (201, 503), response.text
            return response.status_code == 201

        await wait_until(booked, within=15, interval=0.2, what="booking to recover without a restart")


@dataclass
class Load:
    """Concurrent readers through the gateway, recording every answer."""

    gateway: Gateway
    calls: list[Callable[[httpx.AsyncClient], Any]]
    answers: list[tuple[int, float, str]] = field(default_factory=list)
    running: bool = True

    async def worker(self, index: int) -> None:
        async with httpx.AsyncClient(base_url=self.gateway.url, timeout=30) as client:
            while self.running:
                started = time.monotonic()
                try:
                    response = await self.calls[index % len(self.calls)](client)
                    answer = (response.status_code, response.text)
                except httpx.RemoteProtocolError:
                    # The process was killed between sending its answer's headers and its body:
                    # NGINX had passed the headers on, and can only close. A kill does that to
                    # a request in flight; it is no hang, and the client sees it at once.
                    answer = (TRUNCATED, "")
                self.answers.append((answer[0], time.monotonic() - started, answer[1]))
                index += 1

    def count(self, since: int, ok: bool) -> int:
        return sum(1 for status, _, _ in self.answers[since:] if (status == 200) == ok)


async def test_a_service_killed_under_load_no_request_hangs_and_the_gateway_answers_json(
    stack: Stack, gateway: Gateway, new_user: Callable[[], User]
) -> None:
    showtime, user = await stack.showtime(), new_user()
    load = Load(
        gateway,
        [
            lambda c: c.get("/api/bookings/bookings", headers=user.headers),
            lambda c: c.get(f"/api/movies/showtimes/{showtime['id']}/seats"),
        ],
    )
    workers = [asyncio.create_task(load.worker(i)) for i in range(8)]
    try:
        await _kill_and_restart_under(load, stack.services["booking"])
    finally:
        load.running = False
        await asyncio.gather(*workers)
    _assert_no_hang_and_json_errors(load.answers, in_flight=len(workers))


async def _kill_and_restart_under(load: Load, service: Any) -> None:
    async def seen(since: int, ok: bool, count: int) -> bool:
        return load.count(since, ok) >= count

    await wait_until(lambda: seen(0, True, 30), within=20, what="load flowing")
    killed_at = len(load.answers)
    service.kill()
    await wait_until(lambda: seen(killed_at, False, 10), within=20, what="errors while booking is down")
    service.start()
    await service.wait_ready()
    back_at = len(load.answers)
    await wait_until(lambda: seen(back_at, True, 30), within=20, what="load flowing again")


def _assert_no_hang_and_json_errors(answers: list[tuple[int, float, str]], in_flight: int) -> None:
    assert max(seconds for _, seconds, _ in answers) < HANG_SECONDS, "a request hung"
    truncated = sum(1 for status, _, _ in answers if status == TRUNCATED)
    assert truncated <= in_flight, f"{truncated} answers cut off: more than were in flight at the kill"
    errors = [(status, text) for status, _, text in answers if status not in (200, TRUNCATED)]
    assert errors, "the outage was seen"
    for status, text in errors:
        assert status in (502, 503, 504), (status, text[:200])
        assert text.startswith('{"error":'), f"{status} is not the JSON error shape: {text[:200]}"
