from __future__ import annotations

import contextvars
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service.models import outbox
from servicekit.events import EventEnvelope, add_event
from servicekit.testing import RabbitSpy, wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]


async def test_book_holds_seats_and_prices_them_from_the_showtime(
    client: httpx.AsyncClient, make_showtime: Builder, book: Builder
) -> None:
    showtime = await make_showtime()
    response = await book(showtime, ["A1", "F2"])
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "pending"
    assert booking["showtime_id"] == showtime["showtime_id"]
    assert booking["seats"] == ["A1", "F2"]
    assert booking["total_amount"] == 1200 + 2000 and booking["currency"] == "VND"
    assert booking["movie_title"] == "The Test Reel" and booking["expires_at"]


async def test_a_held_seat_is_409_naming_the_taken_seats(make_showtime: Builder, book: Builder) -> None:
    showtime = await make_showtime()
    assert (await book(showtime, ["B1", "B2"])).status_code == 201
    response = await book(showtime, ["B3", "B2", "B1"])
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "seats_unavailable" and error["details"] == ["B1", "B2"]
    assert "B1" in error["message"]
    assert (await book(showtime, ["B3"])).status_code == 201, "a failed request must not keep B3 held"


async def test_the_amount_sent_by_a_client_is_ignored(
    client: httpx.AsyncClient, make_showtime: Builder, user_headers: Headers
) -> None:
    showtime = await make_showtime()
    body = {"showtime_id": showtime["showtime_id"], "seat_ids": ["C1"], "total_amount": 1}
    response = await client.post("/book", json=body, headers=user_headers())
    assert response.status_code == 201 and response.json()["total_amount"] == 1200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"seat_ids": ["A1"]}, 422, "validation_error"),
        ({"showtime_id": "not-a-uuid", "seat_ids": ["A1"]}, 422, "validation_error"),
        ({"showtime_id": "{showtime}", "seat_ids": []}, 422, "validation_error"),
        ({"showtime_id": "{showtime}", "seat_ids": ["A1", "a1"]}, 422, "validation_error"),
        (
            {"showtime_id": "{showtime}", "seat_ids": [f"A{n}" for n in range(1, 11)] + ["B1"]},
            422,
            "too_many_seats",
        ),
        ({"showtime_id": "{showtime}", "seat_ids": ["Z99"]}, 422, "unknown_seats"),
        ({"showtime_id": "{showtime}", "seat_ids": ["A1; DROP TABLE"]}, 422, "validation_error"),
        ({"showtime_id": "{showtime}", "seat_ids": "A1"}, 422, "validation_error"),
        ({"showtime_id": str(uuid.UUID(int=7)), "seat_ids": ["A1"]}, 404, "showtime_not_found"),
    ],
)
async def test_bad_booking_input_is_a_4xx_json_error(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    user_headers: Headers,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    showtime = await make_showtime()
    if body.get("showtime_id") == "{showtime}":
        body = {**body, "showtime_id": showtime["showtime_id"]}
    response = await client.post("/book", json=body, headers=user_headers())
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_ten_seats_is_the_limit_not_an_error(make_showtime: Builder, book: Builder) -> None:
    showtime = await make_showtime()
    response = await book(showtime, [f"D{n}" for n in range(1, 11)])
    assert response.status_code == 201 and len(response.json()["seats"]) == 10


async def test_malformed_json_and_missing_token(client: httpx.AsyncClient, user_headers: Headers) -> None:
    headers = {**user_headers(), "Content-Type": "application/json"}
    malformed = await client.post("/book", content=b'{"showtime_id": ', headers=headers)
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "validation_error"
    anonymous = await client.post("/book", json={"showtime_id": str(uuid.uuid4()), "seat_ids": ["A1"]})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"


async def test_a_started_showtime_is_409(make_showtime: Builder, book: Builder) -> None:
    showtime = await make_showtime(starts_in=timedelta(seconds=2))
    too_many = [f"A{n}" for n in range(1, 11)] + ["B1"]  # 422 until it starts, and never books

    async def refused_as_started() -> httpx.Response | None:
        response = await book(showtime, too_many)
        return response if response.status_code != 422 else None

    response = await wait_until(refused_as_started, within=10, what="the showtime to start")
    assert response.status_code == 409 and response.json()["error"]["code"] == "showtime_started"


async def test_unpaid_bookings_per_user_are_limited(
    make_showtime: Builder, book: Builder, user_headers: Headers, settings: Any
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    limit = settings.max_pending_bookings_per_user
    for n in range(1, limit + 1):
        assert (await book(showtime, [f"E{n}"], headers)).status_code == 201
    response = await book(showtime, ["E9"], headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "too_many_pending_bookings"
    assert (await book(showtime, ["E9"])).status_code == 201, "the refused hold was released"


async def test_book_publishes_booking_created_at_once(
    make_showtime: Builder, book: Builder, spy: RabbitSpy
) -> None:
    """POST /book's statement commits booking.created outside a session and wakes the relay
    itself: the event is out long before the relay's poll (30 s in these tests)."""
    response = await book(await make_showtime(), ["D1"])
    assert response.status_code == 201, response.text
    booking_id = response.json()["id"]

    async def published() -> bool:
        return any(m["data"]["booking_id"] == booking_id for m in spy.of_type("booking.created"))

    await wait_until(published, within=5, what="booking.created, long before the poll")


async def test_a_booking_is_written_in_one_statement(make_showtime: Builder, book: Builder) -> None:
    """The pending-count guard, the booking, its seats and its outbox event: one round trip,
    on an autocommit connection (no BEGIN before it, no COMMIT after it)."""
    showtime, statements, commits = await make_showtime(), [], []
    counting: contextvars.ContextVar[bool] = contextvars.ContextVar("counting", default=False)

    def ours(conn: Any) -> bool:
        # this request's statements (not the sweeper's or the relay's), not movie-service's look-up
        return counting.get() and conn.engine.url.username == "booking_service"

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if ours(conn):
            # SQLAlchemy "begins" every connection, but the driver sends BEGIN only when the
            # DBAPI connection is not in autocommit mode
            statements.append((statement, conn.connection.dbapi_connection.autocommit))

    def commit(conn: Any) -> None:
        if ours(conn):
            commits.append(conn)

    event.listen(Engine, "before_cursor_execute", count)
    event.listen(Engine, "commit", commit)
    try:
        counting.set(True)
        response = await book(showtime, ["C1", "C2", "C3"])
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        event.remove(Engine, "commit", commit)
    assert response.status_code == 201, response.text
    assert len(statements) == 1 and "INSERT INTO booking_seats" in statements[0][0]
    assert statements[0][1], "the insert ran inside a transaction: a BEGIN round trip before it"
    assert commits == [], "a COMMIT round trip after the insert"


async def _outbox_row(session: AsyncSession, where: Any) -> dict[str, Any]:
    """An outbox row without what differs between two writes of one event (id, times)."""
    row = dict((await session.execute(select(outbox).where(where))).one()._mapping)
    for differs in ("event_id", "created_at", "published_at"):
        row.pop(differs)
    return {**row, "payload": {**row["payload"], "event_id": None}}


async def test_book_writes_booking_created_as_add_event_would(
    make_showtime: Builder, book: Builder, db: async_sessionmaker[AsyncSession]
) -> None:
    """POST /book writes its event inside its own statement: the row is the one add_event writes."""
    response = await book(await make_showtime(), ["E1", "E2"])
    assert response.status_code == 201, response.text
    about_booking = outbox.c.payload["data"]["booking_id"].astext == response.json()["id"]
    async with db() as session:
        booked = await _outbox_row(session, about_booking)
        same = EventEnvelope.model_validate({**booked["payload"], "event_id": uuid.uuid4()})
        await add_event(session, outbox, same)
        added = await _outbox_row(session, outbox.c.event_id == same.event_id)
        await session.rollback()
    assert booked["event_type"] == "booking.created" and booked["payload"]["data"]["seats"] == ["E1", "E2"]
    assert booked == added
