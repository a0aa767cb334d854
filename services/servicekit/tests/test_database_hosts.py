"""A multi-host DATABASE_URL: the engine walks the hosts and writes to the first writable one.

The failover itself (a standby listed first, the primary killed, the standby promoted) is
tests/faults/test_postgres_failover.py's, with private servers; here the shared server is
the only live host and the others are ports where nothing listens.
"""

from __future__ import annotations

import socket

from sqlalchemy import text

from servicekit.config import ServiceSettings
from servicekit.db import create_engine
from servicekit.testing.helpers import PG_HOST, PG_PORT, database_url, test_settings_overrides


def _closed_port() -> int:
    """A port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _multi_host_url(*hosts: str) -> str:
    """The form docs/operations.md gives: ``...@/db?host=a:p&host=b:p&target_session_attrs=read-write``."""
    single = database_url("auth_service")
    before, database = single.split(f"@{PG_HOST}:{PG_PORT}/")
    listed = "&".join(f"host={host}" for host in hosts)
    return f"{before}@/{database}?{listed}&target_session_attrs=read-write"


async def test_a_host_that_is_down_is_skipped_for_the_next_one() -> None:
    url = _multi_host_url(
        f"127.0.0.1:{_closed_port()}", f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{_closed_port()}"
    )
    settings = ServiceSettings(**{**test_settings_overrides("auth_service", "auth"), "database_url": url})
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            port, standby = (
                await connection.execute(text("SELECT inet_server_port(), pg_is_in_recovery()"))
            ).one()
    finally:
        await engine.dispose()
    assert (port, standby) == (int(PG_PORT), False)


async def test_with_no_host_up_the_connection_fails_as_unavailable() -> None:
    """Every host down is a ConnectionError, as one host down is: the handlers answer it 503."""
    url = _multi_host_url(f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{_closed_port()}")
    settings = ServiceSettings(**{**test_settings_overrides("auth_service", "auth"), "database_url": url})
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except ConnectionError:  # servicekit.errors.DEPENDENCY_UNAVAILABLE
        pass
    else:
        raise AssertionError("connected with every host down")
    finally:
        await engine.dispose()
