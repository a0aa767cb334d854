"""servicekit.cache.LocalCache: a byte budget, expiry, and one load per key at a time."""

from __future__ import annotations

import asyncio

import pytest

from servicekit.cache import LocalCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_go_first_and_the_budget_holds() -> None:
    cache: LocalCache[str, str] = LocalCache(3000, size_of=len)
    for name in "abc":
        cache.put(name, name * 1000)
    assert cache.get("a") == "a" * 1000  # now the most recently used
    cache.put("d", "d" * 1000)
    assert cache.get("b") is None and cache.get("a") and cache.get("d")
    assert len(cache) == 3 and cache.total_bytes == 3000


def test_a_value_above_the_whole_budget_is_not_kept_nor_what_it_replaces() -> None:
    cache: LocalCache[str, str] = LocalCache(1000, size_of=len)
    cache.put("a", "small")
    cache.put("a", "x" * 1001)
    assert cache.get("a") is None and cache.total_bytes == 0


def test_expired_entries_are_swept_on_insert_without_being_read() -> None:
    clock = Clock()
    cache: LocalCache[str, str] = LocalCache(
        10_000, size_of=lambda _: 100, fresh_for=lambda _: 10, clock=clock
    )
    cache.put("a", "A")
    cache.put("b", "B")
    clock.now += 11
    cache.put("c", "C")
    assert len(cache) == 1 and cache.total_bytes == 100 and cache.get("c") == "C"
    clock.now += 10
    assert cache.get("c") is None and cache.total_bytes == 0


async def test_a_stale_value_is_not_served_but_handed_to_the_next_load() -> None:
    clock = Clock()
    cache: LocalCache[str, int] = LocalCache(10, fresh_for=lambda _: 1, keep_stale=5, clock=clock)
    seen: list[int | None] = []

    async def load(_: str, stale: int | None) -> int:
        seen.append(stale)
        return (stale or 0) + 1

    assert await cache.get_or_load("k", load) == (1, False)
    assert await cache.get_or_load("k", load) == (1, True)
    clock.now += 2  # stale: loaded again, from the stale value
    assert cache.get("k") is None and await cache.get_or_load("k", load) == (2, False)
    clock.now += 7  # past its stale time too: gone
    assert await cache.get_or_load("k", load) == (1, False)
    assert seen == [None, 1, None]


async def test_concurrent_misses_share_one_load() -> None:
    cache: LocalCache[str, str] = LocalCache(10)
    started, release, loads = asyncio.Event(), asyncio.Event(), []

    async def load(*_: object) -> str:
        loads.append(1)
        started.set()  # every caller has asked by now: the load runs after them
        await release.wait()
        return "value"

    callers = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(20)]
    await started.wait()
    release.set()
    answers = await asyncio.gather(*callers)
    assert len(loads) == 1 and answers == [("value", False)] + [("value", True)] * 19


async def test_a_failed_load_fails_every_waiting_caller_and_is_not_kept() -> None:
    cache: LocalCache[str, str] = LocalCache(10)
    started, release = asyncio.Event(), asyncio.Event()

    async def failing(*_: object) -> str:
        started.set()
        await release.wait()
        raise ConnectionError("upstream down")

    callers = [asyncio.create_task(cache.get_or_load("k", failing)) for _ in range(3)]
    await started.wait()
    release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)

    async def working(*_: object) -> str:
        return "back"

    assert await cache.get_or_load("k", working) == ("back", False)


async def test_a_load_goes_on_when_its_caller_is_cancelled() -> None:
    cache: LocalCache[str, str] = LocalCache(10)
    started, release = asyncio.Event(), asyncio.Event()

    async def load(*_: object) -> str:
        started.set()
        await release.wait()
        return "value"

    caller = asyncio.create_task(cache.get_or_load("k", load))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()

    async def joined(*_: object) -> str:
        raise AssertionError("a second load: the first one was lost with its caller")

    assert await cache.get_or_load("k", joined) == ("value", True)
    assert cache.get("k") == "value"
