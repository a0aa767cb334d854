"""``python -m servicekit.migrations``: the command line every deployment runs, on the test database."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicekit.migrations import argument_parser, main
from servicekit.testing.helpers import database_url


async def migrations(*argv: str) -> tuple[int, str]:
    """The command in a child process, awaited: the session's event loop keeps running meanwhile.

    Services of other tests live on that loop (the auth app and its outbox relay, session-long).
    Blocked by a synchronous subprocess.run, a relay caught between its SELECT on auth.outbox and
    its COMMIT held its transaction open for as long as the migration ran, and the migration's
    CREATE / DROP INDEX CONCURRENTLY waits for every older transaction on its table: a hang,
    seen once in CI. The timeout guards against a hang, not a slow start: on a loaded 2-core
    machine one process start plus a migration has taken over 60 s.
    """
    env = {**os.environ, "DATABASE_URL": database_url("auth_service")}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "servicekit.migrations", *argv,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(child.communicate(), timeout=100)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    assert child.returncode is not None
    return child.returncode, stderr.decode()


async def auth_revision() -> str:
    engine = create_async_engine(database_url("auth_service"))
    async with engine.connect() as connection:
        revision = (
            await connection.execute(text("SELECT version_num FROM auth.alembic_version"))
        ).scalar_one()
    await engine.dispose()
    return str(revision)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["auth_service", "downgrade"], "the following arguments are required: revision"),
        ([], "the following arguments are required: package"),
        (["auth_service", "sideways"], "invalid choice: 'sideways'"),
    ],
)
def test_a_wrong_command_line_is_told_not_a_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_package_alone_upgrades_to_head() -> None:
    args = argument_parser().parse_args(["auth_service"])
    assert (args.command, args.revision) == ("upgrade", "head")
    args = argument_parser().parse_args(["auth_service", "downgrade", "-1"])
    assert (args.command, args.revision) == ("downgrade", "-1")


async def relay_mid_transaction(engine: AsyncEngine, started: asyncio.Event) -> None:
    """What the session's auth relay does at the worst moment: a transaction on auth.outbox,
    open when the migration starts, committed half a second later on this loop."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT count(*) FROM auth.outbox"))
        started.set()
        await asyncio.sleep(0.5)


async def migrate_beside_a_relay(*argv: str) -> None:
    engine = create_async_engine(database_url("auth_service"))
    started = asyncio.Event()
    relay = asyncio.create_task(relay_mid_transaction(engine, started))
    try:
        await started.wait()
        returncode, stderr = await migrations(*argv)
        assert returncode == 0, stderr
        await relay
    finally:
        relay.cancel()
        await engine.dispose()


@pytest.mark.timeout(240)
async def test_downgrade_to_a_revision_then_upgrade_to_head() -> None:
    """Each migration starts while a relay's transaction is open on the table whose index it
    builds or drops concurrently: it waits for that transaction, and that one ends."""
    head = await auth_revision()
    await migrate_beside_a_relay("auth_service", "downgrade", "0001")
    try:
        assert await auth_revision() == "0001"
    finally:
        await migrate_beside_a_relay("auth_service")
    assert await auth_revision() == head
