from __future__ import annotations

import asyncio

import pytest

from servicekit.breaker import AsyncCircuitBreaker, CircuitOpenError


class Flaky:
    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if self.failing:
            raise ConnectionError("down")
        return "ok"


async def test_breaker_trips_after_fail_max_failed_awaits_and_fails_fast() -> None:
    breaker = AsyncCircuitBreaker("dep", fail_max=3, reset_timeout=60)
    dep = Flaky()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(dep)
    with pytest.raises(CircuitOpenError):  # the third failure opens it
        await breaker.call(dep)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        await breaker.call(dep)
    assert dep.calls == 3  # the open breaker did not call the dependency


async def test_breaker_half_opens_after_reset_timeout_and_closes_on_success() -> None:
    breaker = AsyncCircuitBreaker("dep", fail_max=1, reset_timeout=0.2)
    dep = Flaky()
    with pytest.raises(CircuitOpenError):
        await breaker.call(dep)
    assert breaker.state == "open"
    await asyncio.sleep(0.25)  # the breaker's own timer, not synchronisation
    dep.failing = False
    assert await breaker.call(dep) == "ok"
    assert breaker.state == "closed"


async def test_a_failure_while_half_open_opens_again() -> None:
    breaker = AsyncCircuitBreaker("dep", fail_max=1, reset_timeout=0.2)
    dep = Flaky()
    with pytest.raises(CircuitOpenError):
        await breaker.call(dep)
    await asyncio.sleep(0.25)
    with pytest.raises((ConnectionError, CircuitOpenError)):
        await breaker.call(dep)
    assert breaker.state == "open"


async def test_success_resets_the_failure_count() -> None:
    breaker = AsyncCircuitBreaker("dep", fail_max=2, reset_timeout=60)
    dep = Flaky()
    with pytest.raises(ConnectionError):
        await breaker.call(dep)
    dep.failing = False
    await breaker.call(dep)
    dep.failing = True
    with pytest.raises(ConnectionError):
        await breaker.call(dep)
    assert breaker.state == "closed"
