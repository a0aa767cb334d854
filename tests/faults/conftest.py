"""Fault tests: the real services as subprocesses, started with their own start command.

Each service runs as ``.venv/bin/python -m servicekit.serve <package>`` on a free port,
against a database of their own (``TEST_DATABASE_NAME`` + ``_faults``, made fresh), with
Redis and RabbitMQ reached through TcpProxy instances this process owns (on a thread of
their own, so they forward while a test waits on anything), mail to an aiosmtpd server
this process runs, and this run's own Redis prefix, exchange and queue names. Outages are
made by cutting a proxy or killing a process group; the machine's shared servers are never
touched. Everything started is stopped in teardown (process groups), also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultkit import (  # noqa: E402  (the helper module sits beside this conftest)
    DATABASE,
    Background,
    Stack,
    User,
    mint_user,
)
from private_gateway import Gateway, running_gateway  # noqa: E402


@pytest.fixture(scope="session")
def background() -> Iterator[Background]:
    """The TCP proxies (Redis, RabbitMQ) and the SMTP server, on a thread of their own."""
    bg = Background()
    bg.start()
    yield bg
    bg.stop()


@pytest.fixture(scope="session")
def fault_database() -> str:
    """A fresh database with every service's roles, schemas and migrations (scripts/db_setup.sh)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(root / "scripts/db_setup.sh"), DATABASE, "--fresh"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        timeout=180,
    )
    return DATABASE


@pytest.fixture(scope="session")
async def stack(
    fault_database: str, background: Background, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """movie, booking, payment and notification, started once for the fault tests."""
    built = Stack(background, tmp_path_factory.mktemp("faults"))
    try:
        await built.start()
        yield built
    finally:
        await built.stop()


@pytest.fixture(autouse=True)
async def healthy(stack: Stack) -> AsyncIterator[Stack]:
    """Each test starts with every proxy up and every service alive (a failed test's outage
    does not leak into the next one)."""
    await stack.heal()
    yield stack
    await stack.heal()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[Gateway]:
    """A private NGINX rendered from gateway/*.template in front of this stack."""
    async with running_gateway(stack) as gw:
        yield gw


@pytest.fixture
def new_user() -> Callable[[], User]:
    """A fresh user (token signed like auth-service's; each has its own mail address)."""
    return mint_user
