"""``python -m servicekit.migrations``: the command line every deployment runs, on the test database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.migrations import argument_parser, main
from servicekit.testing.helpers import database_url


def migrations(*argv: str) -> subprocess.CompletedProcess[str]:
    # The timeout guards against a hang, not a slow start: on a loaded 2-core machine one
    # process start plus a migration has taken over 60 s (seen twice while chaos.sh ran beside).
    env = {**os.environ, "DATABASE_URL": database_url("auth_service")}
    return subprocess.run(
        [sys.executable, "-m", "servicekit.migrations", *argv],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


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


async def test_downgrade_to_a_revision_then_upgrade_to_head() -> None:
    head = await auth_revision()
    downgraded = migrations("auth_service", "downgrade", "0001")
    assert downgraded.returncode == 0, downgraded.stderr
    try:
        assert await auth_revision() == "0001"
    finally:
        upgraded = migrations("auth_service")
    assert upgraded.returncode == 0, upgraded.stderr
    assert await auth_revision() == head
