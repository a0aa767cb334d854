"""Alembic, once for all services: each service's migrations/env.py calls :func:`run_migrations`.

Command line (the same in containers, the native runner, k8s Jobs and tests)::

    python -m servicekit.migrations auth_service            # upgrade head
    python -m servicekit.migrations auth_service upgrade 0002_housekeeping
    python -m servicekit.migrations auth_service downgrade -1
    python -m servicekit.migrations auth_service revision -m "add x" --autogenerate
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.config import ServiceSettings


def _include_object(schema: str) -> Callable[..., bool]:
    def include(obj: object, name: str, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "table":
            return getattr(obj, "schema", None) == schema
        return True

    return include


def _do_run(connection: Connection, metadata: MetaData, schema: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_object=_include_object(schema),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(metadata: MetaData, settings: ServiceSettings) -> None:
    engine = create_async_engine(settings.database_url.get_secret_value())
    async with engine.connect() as connection:
        await connection.run_sync(_do_run, metadata, settings.db_schema)
        await connection.commit()
    await engine.dispose()


def run_migrations(metadata: MetaData, settings: ServiceSettings) -> None:
    """Entry point for a service's ``migrations/env.py`` (online mode only).

    The schema itself is made by ``database/init`` (the service role cannot create schemas).
    """
    asyncio.run(_run_async(metadata, settings))


def alembic_config(package: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    return config


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.migrations", description="Run a service's Alembic migrations."
    )
    parser.add_argument("package", help="the service's package, e.g. auth_service")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help="default: upgrade head")
    parser.set_defaults(command="upgrade", revision="head")  # after add_subparsers, which sets None
    upgrade = commands.add_parser("upgrade", help="upgrade to a revision")
    upgrade.add_argument("revision", nargs="?", default="head", help="default: head")
    downgrade = commands.add_parser("downgrade", help="downgrade to a revision")
    downgrade.add_argument("revision", help="the revision to go back to: an id, -1, or base")
    revision = commands.add_parser("revision", help="write a new revision file")
    revision.add_argument("-m", "--message", default="change")
    revision.add_argument("--autogenerate", action="store_true", help="compare the models with the database")
    return parser


def main(argv: list[str]) -> int:
    """Run the command; a wrong command line exits 2 with argparse's usage and message."""
    args = argument_parser().parse_args(argv)
    config = alembic_config(args.package)
    if args.command == "upgrade":
        command.upgrade(config, args.revision)
    elif args.command == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.revision(config, message=args.message, autogenerate=args.autogenerate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
