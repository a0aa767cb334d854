from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from movie_service.config import MovieSettings
from movie_service.main import create_app
from movie_service.seat_map import ShowtimeFacts
from servicekit.testing import app_client, mint_token, test_settings_overrides

Builder = Callable[..., Awaitable[dict[str, Any]]]
SeatStatusTable = dict[str, dict[str, list[str]]]
SMALL_LAYOUT = {
    "rows": [
        {"seats": 4, "aisles_after": [2]},
        {"seats": 4, "tier": "vip"},
        {"label": "K", "seats": 2, "tier": "couple"},
    ]
}
PRICES = {"standard": 90000, "vip": 130000, "couple": 220000}


FactsBuilder = Callable[..., ShowtimeFacts]


def make_settings(**extra: object) -> MovieSettings:
    return MovieSettings(**test_settings_overrides("movie_service", "movie", seed_demo_data=False, **extra))


def contract_booking_app(table: SeatStatusTable, internal_token: str) -> FastAPI:
    """booking-service's seat-status endpoint exactly as docs/contracts.md pins it."""
    app = FastAPI()

    @app.get("/internal/showtimes/{showtime_id}/seat-status")
    async def seat_status(showtime_id: uuid.UUID, x_internal_token: str = Header(default="")) -> JSONResponse:
        if x_internal_token != internal_token:
            return JSONResponse({"error": {"code": "not_found", "message": "Not Found"}}, status_code=404)
        taken = table.get(str(showtime_id), {})
        body = {
            "showtime_id": str(showtime_id),
            "held": taken.get("held", []),
            "booked": taken.get("booked", []),
        }
        return JSONResponse(body)

    return app


@pytest.fixture(scope="session")
def settings() -> MovieSettings:
    return make_settings()


@pytest.fixture(scope="session")
def seat_statuses() -> SeatStatusTable:
    """What the contract booking app answers, per showtime id: {"held": [...], "booked": [...]}."""
    return {}


@pytest.fixture(scope="session")
def booking_app(settings: MovieSettings, seat_statuses: SeatStatusTable) -> FastAPI:
    """The contract booking app that answers from ``seat_statuses``."""
    return contract_booking_app(seat_statuses, settings.internal_token.get_secret_value())


@pytest.fixture(scope="session")
async def client(settings: MovieSettings, booking_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, httpx.ASGITransport(app=booking_app))) as c:
        yield c


@pytest.fixture(scope="session")
def admin(settings: MovieSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, roles=('user', 'admin'))}"}


@pytest.fixture(scope="session")
def user(settings: MovieSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, roles=('user',))}"}


@pytest.fixture(scope="session")
def internal(settings: MovieSettings) -> dict[str, str]:
    return {"X-Internal-Token": settings.internal_token.get_secret_value()}


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def soon(hours: float = 24) -> datetime:
    """A start time in the future, on a whole minute."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


@pytest.fixture
def post(client: httpx.AsyncClient, admin: dict[str, str]) -> Builder:
    """POST as admin and expect 201."""

    async def build(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body, headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return build


@pytest.fixture
def movie(post: Builder) -> Builder:
    async def build(**overrides: Any) -> dict[str, Any]:
        body = {"title": unique("Movie"), "duration_minutes": 100, "genres": ["drama"], **overrides}
        return await post("/movies", body)

    return build


@pytest.fixture
def theater(post: Builder) -> Builder:
    async def build(**overrides: Any) -> dict[str, Any]:
        body = {"name": unique("Cinema"), "city": "Hanoi", "time_zone": "Asia/Ho_Chi_Minh", **overrides}
        return await post("/theaters", body)

    return build


@pytest.fixture
def auditorium(post: Builder, theater: Builder) -> Builder:
    async def build(theater_id: str | None = None, layout: dict[str, Any] | None = None) -> dict[str, Any]:
        theater_id = theater_id or (await theater())["id"]
        body = {"theater_id": theater_id, "name": unique("Hall"), "layout": layout or SMALL_LAYOUT}
        return await post("/auditoriums", body)

    return build


@pytest.fixture
def showtime(post: Builder, movie: Builder, auditorium: Builder) -> Builder:
    """A showtime (a new movie and auditorium unless given)."""

    async def build(
        movie_id: str | None = None, auditorium_id: str | None = None, starts_at: datetime | None = None
    ) -> dict[str, Any]:
        body = {
            "movie_id": movie_id or (await movie())["id"],
            "auditorium_id": auditorium_id or (await auditorium())["id"],
            "starts_at": (starts_at or soon()).isoformat(),
            "currency": "VND",
            "prices": PRICES,
        }
        return await post("/showtimes", body)

    return build


@pytest.fixture
def schedule(client: httpx.AsyncClient, admin: dict[str, str]) -> Callable[..., Awaitable[httpx.Response]]:
    """POST /showtimes as admin and return the raw answer (for the refusals)."""

    async def send(movie_id: str, auditorium_id: str, starts: datetime) -> httpx.Response:
        body = {"movie_id": movie_id, "auditorium_id": auditorium_id, "starts_at": starts.isoformat()}
        return await client.post("/showtimes", json={**body, "prices": PRICES}, headers=admin)

    return send


@pytest.fixture(scope="session")
def showtime_facts() -> FactsBuilder:
    """A showtime's facts without the database: ``rows`` x ``seats_per_row`` standard seats
    (rows A..Z, AA..), each at ``PRICES["standard"]``."""

    def build(rows: int, seats_per_row: int, showtime_id: uuid.UUID | None = None) -> ShowtimeFacts:
        starts = datetime.now(UTC) + timedelta(days=1)
        labels = [chr(ord("A") + n % 26) * (1 + n // 26) for n in range(rows)]
        layout = {"rows": [{"label": label, "seats": seats_per_row, "tier": "standard"} for label in labels]}
        return ShowtimeFacts(
            showtime_id or uuid.uuid4(), uuid.uuid4(), "Film", uuid.uuid4(), "Cinema", "1 Main St", "City",
            "Asia/Ho_Chi_Minh", uuid.uuid4(), "Hall", starts, starts + timedelta(hours=2), "VND",
            {"standard": PRICES["standard"]}, layout,
        )  # fmt: skip

    return build
