"""Counting round trips to PostgreSQL: every asyncpg call that waits for the server's answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import asyncpg

_COUNTER: ContextVar[list[int] | None] = ContextVar("servicekit_round_trips", default=None)
_IGNORED: ContextVar[bool] = ContextVar("servicekit_round_trips_ignored", default=False)
_CONNECTION, _PREPARED = asyncpg.connection.Connection, asyncpg.prepared_stmt.PreparedStatement
# A statement on asyncpg or through SQLAlchemy (its prepared statements), BEGIN, COMMIT, a prepare.
# ``execute`` with arguments goes on to ``_execute``, where it is counted once.
_WAITING = [(_CONNECTION, name) for name in ("execute", "_execute", "prepare")] + [
    (_PREPARED, name) for name in ("fetch", "fetchrow", "fetchval", "executemany")
]


@contextlib.contextmanager
def round_trips(*, everywhere: bool = False) -> Iterator[list[int]]:
    """Count round trips while inside (the one element of the list yielded): of this context and
    the tasks it starts, or, with ``everywhere``, of every task (background work included)."""
    counted = [0]
    originals = {(owner, name): getattr(owner, name) for owner, name in _WAITING}

    def counting(owner: type, name: str, original: Any) -> Any:
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter = counted if everywhere else _COUNTER.get()
            counted_elsewhere = owner is _CONNECTION and name == "execute" and len(args) > 1
            if counter is not None and not _IGNORED.get() and not counted_elsewhere:
                counter[0] += 1
            return await original(self, *args, **kwargs)

        return wrapper

    token = _COUNTER.set(counted)
    for (owner, name), original in originals.items():
        setattr(owner, name, counting(owner, name, original))
    try:
        yield counted
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
        _COUNTER.reset(token)


@contextlib.contextmanager
def not_counted() -> Iterator[None]:
    """Round trips of this context are not counted while inside (a benchmark's own probes)."""
    token = _IGNORED.set(True)
    try:
        yield
    finally:
        _IGNORED.reset(token)
