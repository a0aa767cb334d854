"""A process-local LRU bounded by an estimated byte budget, whose entries may also expire.

Entry counts are a poor bound when one entry is a 100-seat showtime and the next
a 10,000-seat one (several MB): the budget is in bytes, as estimated by the caller.
Expired entries are dropped when read and swept on insert (at most once per TTL),
so memory is not held by entries nobody can use any more.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires_at: float


class SizedLRU(Generic[K, V]):
    """At most ``max_bytes`` of entries (least recently used out first), each kept ``ttl`` seconds."""

    def __init__(
        self, max_bytes: int, ttl: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_bytes, self._ttl, self._clock = max_bytes, ttl, clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._next_sweep = clock()

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The live value (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: K, value: V, size: int) -> None:
        """Keep ``value`` (``size`` estimated bytes); an entry above the whole budget is not kept."""
        self._drop(key)
        self._sweep_expired()
        if size > self._max_bytes:
            return
        expires_at = self._clock() + self._ttl if self._ttl is not None else float("inf")
        self._entries[key] = _Entry(value, size, expires_at)
        self._bytes += size
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _sweep_expired(self) -> None:
        now = self._clock()
        if self._ttl is None or now < self._next_sweep:
            return
        self._next_sweep = now + self._ttl
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            self._drop(key)

    def _drop(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size
