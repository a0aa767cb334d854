"""PostgreSQL failover: a multi-host DATABASE_URL (``?host=a:p&host=b:p&target_session_attrs=
read-write``) always writes to the current primary; a request that loses its connection when
the primary dies is a 503 + Retry-After, never a 500; once the standby is promoted the pool
heals by itself, and what was committed before (synchronous replication) is all there.

A private primary and streaming standby, made with initdb and pg_basebackup in a folder of
the test's, on their own ports (never the machine's shared server), killed and torn down here.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.config import ServiceSettings
from servicekit.db import create_engine
from servicekit.errors import install_error_handlers
from servicekit.testing import wait_until
from servicekit.testing.postgres import StreamingPair, postgres_tools_missing, private_folder
from servicekit.testing.processes import free_port

pytestmark = pytest.mark.skipif(postgres_tools_missing(), reason="needs PostgreSQL's binaries")


class Pair(StreamingPair):
    def url(self) -> str:
        hosts = f"host=127.0.0.1:{self.standby_port}&host=127.0.0.1:{self.primary_port}"
        return f"postgresql+asyncpg://postgres@/postgres?{hosts}&target_session_attrs=read-write"


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair(private_folder("mb-pg-failover-"), free_port(), free_port())
    try:
        made.create()
        yield made
    finally:
        made.stop_all()
        shutil.rmtree(made.folder, ignore_errors=True)


def _app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/rows/{row}")
    async def add_row(row: int) -> dict[str, object]:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO seats_sold VALUES (:row)"), {"row": row})
            port = (await connection.execute(text("SELECT inet_server_port()"))).scalar_one()
        return {"row": row, "server_port": port}

    return app


@pytest.fixture
async def api(pair: Pair) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    engine = create_engine(ServiceSettings(database_url=pair.url(), db_schema="public"))
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE seats_sold (id int PRIMARY KEY)"))
    transport = httpx.ASGITransport(app=_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://failover") as client:
        yield client, engine
    await engine.dispose()


async def test_writes_go_to_the_primary_and_follow_a_promotion(
    pair: Pair, api: tuple[httpx.AsyncClient, AsyncEngine]
) -> None:
    client, engine = api
    before = [await client.post(f"/rows/{row}") for row in range(1, 21)]
    # The standby is listed first: read-write sends every write to the primary.
    assert {answer.json()["server_port"] for answer in before} == {pair.primary_port}

    async with engine.connect() as connection:
        replication = await connection.execute(text("SELECT sync_state FROM pg_stat_replication"))
        assert replication.scalars().all() == ["sync"]  # the writes above waited for the standby
    pair.kill_primary()
    lost = await client.post("/rows/100")  # its pooled connection is dead, and there is no primary
    assert lost.status_code == 503 and lost.headers["retry-after"] == "1"
    assert lost.json()["error"]["code"] == "service_unavailable"

    pair.promote()

    rows = itertools.count(101)  # a new row each try: a try answered 503 may still have committed

    async def written() -> httpx.Response | None:
        answer = await client.post(f"/rows/{next(rows)}")
        assert answer.status_code in (200, 503), answer.text  # never a 500 meanwhile
        return answer if answer.status_code == 200 else None

    healed = await wait_until(written, within=20, interval=0.2, what="a write on the promoted standby")
    assert healed.json()["server_port"] == pair.standby_port
    async with engine.connect() as connection:
        kept = (await connection.execute(text("SELECT count(*) FROM seats_sold WHERE id <= 20"))).scalar_one()
    assert kept == 20  # synchronous replication: every write the clients were told of survived
