"""Alembic, once for all services: each service's migrations/env.py calls :func:`run_migrations`.

Command line (the same in containers, the native runner, k8s Jobs and tests)::

    python -m servicekit.migrations auth_service            # upgrade head
    python -m servicekit.migrations auth_service revision -m "add x" --autogenerate
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python -m servicekit.migrations PACKAGE [revision -m MSG]\n")
        return 2
    config = alembic_config(argv[0])
    if len(argv) == 1 or argv[1] == "upgrade":
        command.upgrade(config, argv[2] if len(argv) > 2 else "head")
    elif argv[1] == "revision":
        message = argv[argv.index("-m") + 1] if "-m" in argv else "change"
        command.revision(config, message=message, autogenerate="--autogenerate" in argv)
    elif argv[1] == "downgrade":
        command.downgrade(config, argv[2])
    else:
        sys.stderr.write(f"unknown command {argv[1]!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
