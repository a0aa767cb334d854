"""Count the round trips this process makes to PostgreSQL through asyncpg (for the in-process
CPU benchmarks): ``ROUND_TRIPS.count`` after ``ROUND_TRIPS.install()``.

A round trip is a message that waits for the server's answer: a statement run by asyncpg
(``Connection._execute``: servicekit.hotsql, the relay's claim), a prepared statement run by
SQLAlchemy (its bind and execute), or a query without arguments (``Connection.execute``: BEGIN,
COMMIT, ROLLBACK). A statement's first prepare on a connection is not counted (warm pools).
Inside ``ROUND_TRIPS.ignored()`` (a benchmark's own probes) nothing is counted.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import asyncpg
import asyncpg.prepared_stmt

_IGNORED = contextvars.ContextVar("round_trips_ignored", default=False)


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0

    def _one(self) -> None:
        if not _IGNORED.get():
            self.count += 1

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        token = _IGNORED.set(True)
        try:
            yield
        finally:
            _IGNORED.reset(token)

    def install(self) -> None:
        connection, prepared = asyncpg.Connection, asyncpg.prepared_stmt.PreparedStatement
        execute, run = connection.execute, connection._execute
        bind_execute = prepared._PreparedStatement__bind_execute  # type: ignore[attr-defined]

        async def counted_execute(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if not args:  # with arguments it goes through _execute, counted there
                self._one()
            return await execute(conn, query, *args, **kwargs)

        async def counted_run(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self._one()
            return await run(conn, *args, **kwargs)

        async def counted_bind_execute(statement: Any, *args: Any, **kwargs: Any) -> Any:
            self._one()
            return await bind_execute(statement, *args, **kwargs)

        connection.execute = counted_execute  # type: ignore[method-assign]
        connection._execute = counted_run  # type: ignore[method-assign]
        prepared._PreparedStatement__bind_execute = counted_bind_execute  # type: ignore[attr-defined]


ROUND_TRIPS = RoundTrips()
