"""PgBouncer tests: the services through a private PgBouncer in transaction pooling mode.

Each PgBouncer runs from Debian's ``pgbouncer`` package (scripts/test.sh installs it) on a
free 127.0.0.1 port, in a temporary directory of its own, in front of the test database
(``TEST_DATABASE_NAME``) of the shared PostgreSQL. Clients log in with the services' roles
and passwords (md5, from its own auth file), and PgBouncer logs in to PostgreSQL with the
same. It is stopped and its directory removed at teardown, also when a test fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgbouncerkit import PgBouncer, start_pgbouncer  # noqa: E402  (the helper module sits beside this conftest)


@pytest.fixture(scope="session")
def pgbouncers() -> Iterator[Callable[..., PgBouncer]]:
    """Start PgBouncers on demand; every one is stopped at the end of the session."""
    started: list[PgBouncer] = []

    def start(pool_size: int, **extra: str) -> PgBouncer:
        started.append(start_pgbouncer(pool_size, **extra))
        return started[-1]

    yield start
    for bouncer in started:
        bouncer.stop()


@pytest.fixture(scope="session")
def pgbouncer(pgbouncers: Callable[..., PgBouncer]) -> PgBouncer:
    """PgBouncer as production would run it: transaction mode, two server connections per
    service (every request's transactions share them), startup parameters as shipped."""
    return pgbouncers(2)
