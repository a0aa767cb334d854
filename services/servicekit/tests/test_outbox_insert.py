from __future__ import annotations

import pytest
from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.events import new_event, outbox_insert_per_row, outbox_row

_NEW_EVENT = outbox_insert_per_row("changed")
# A state change (here: ``rows`` rows of nothing) and its event, in one statement.
_CHANGE_AND_EVENT = text(
    f"""
    WITH changed AS (SELECT n FROM generate_series(1, :rows) AS n),
         new_event AS ({_NEW_EVENT.sql})
    SELECT count(*) FROM changed
    """
).bindparams(*_NEW_EVENT.bindparams)


@pytest.mark.parametrize("rows", [0, 1])
async def test_a_statement_writes_its_event_only_if_its_change_happened(
    sessionmaker: async_sessionmaker[AsyncSession], tables: dict[str, Table], schema: str, rows: int
) -> None:
    event = new_event("kit.changed", "kit", {"rows": rows})
    outbox = tables["outbox"]
    async with sessionmaker() as session:
        await session.execute(text(f'SET LOCAL search_path TO "{schema}"'))  # as a service's engine
        await session.execute(_CHANGE_AND_EVENT, {"rows": rows, **outbox_row(event)})
        stored = (
            await session.execute(select(outbox.c.payload).where(outbox.c.event_id == event.event_id))
        ).all()
        await session.rollback()  # the relays of the other tests read this outbox
    assert [row.payload for row in stored] == [event.model_dump(mode="json")] * rows
