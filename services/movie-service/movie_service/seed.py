"""Demo programme seeded on first start: 13 movies, 3 theaters in 2 cities, 6 auditoriums and
showtimes for the next 7 days. Prices are in VND (ISO 4217 minor unit = 1 đồng).

Idempotent and safe with several replicas: the ``seed_runs`` row is inserted in the same
transaction, so a second replica waits on it and then finds the seed already applied.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from movie_service import repository
from movie_service.models import Auditorium, Movie, Showtime, Theater

VIETNAM = "Asia/Ho_Chi_Minh"
PRICES = {"price_standard": 90_000, "price_vip": 130_000, "price_couple": 220_000}
SLOTS = (time(9, 0), time(12, 30), time(16, 0), time(19, 30), time(23, 0))  # 210 min apart
DAYS = 7

# title, genres, minutes, rating, language, release date
MOVIES: list[tuple[str, list[str], int, str, str, date]] = [
    ("The Last Monsoon", ["drama", "adventure"], 118, "T13", "Vietnamese", date(2025, 11, 7)),
    ("Neon Harbor", ["action", "thriller"], 126, "T16", "English", date(2025, 10, 24)),
    ("Paper Lanterns", ["romance", "drama"], 104, "P", "Vietnamese", date(2025, 9, 12)),
    ("Orbitfall", ["sci-fi", "action"], 142, "T13", "English", date(2025, 11, 21)),
    ("The Quiet Kitchen", ["comedy", "family"], 97, "P", "Vietnamese", date(2025, 8, 29)),
    ("Midnight Ferry", ["horror", "thriller"], 101, "T18", "Vietnamese", date(2025, 10, 31)),
    ("Dragon of Ha Long", ["animation", "family", "adventure"], 92, "P", "Vietnamese", date(2025, 12, 1)),
    ("Glass City", ["sci-fi", "drama"], 155, "T16", "English", date(2025, 7, 18)),
    ("Rice Fields Forever", ["documentary"], 88, "P", "Vietnamese", date(2025, 6, 6)),
    ("Second Serve", ["sport", "comedy"], 110, "T13", "English", date(2025, 11, 14)),
    ("The Cartographer", ["mystery", "thriller"], 132, "T16", "French", date(2025, 9, 26)),
    ("Saigon Blues", ["music", "romance"], 115, "T13", "Vietnamese", date(2025, 10, 10)),
    ("Iron Monsoon II", ["action", "sci-fi"], 168, "T16", "English", date(2025, 12, 12)),
]


def _rows(spec: list[tuple[int, int, str, list[int]]]) -> dict[str, Any]:
    """Layout from (row count, seats per row, tier, aisles) blocks, rows labelled A, B, .."""
    labels = (chr(ord("A") + i) for i in itertools.count())
    rows = [
        {"label": next(labels), "seats": seats, "tier": tier, "aisles_after": aisles}
        for count, seats, tier, aisles in spec
        for _ in range(count)
    ]
    return {"rows": rows}


LARGE = _rows([(8, 20, "standard", [4, 16]), (2, 20, "vip", [4, 16]), (1, 10, "couple", [5])])  # 210
MEDIUM = _rows([(6, 14, "standard", [3, 11]), (2, 14, "vip", [3, 11]), (1, 6, "couple", [3])])  # 118
SMALL = _rows([(6, 12, "standard", [6])])  # 72

THEATERS = [
    ("MB Cinema Ba Trieu", "Hanoi", "191 Ba Trieu, Hai Ba Trung", [("Hall 1", LARGE), ("Hall 2", SMALL)]),
    ("MB Cinema Cau Giay", "Hanoi", "241 Xuan Thuy, Cau Giay", [("Hall 1", MEDIUM), ("Hall 2", SMALL)]),
    (
        "MB Cinema Nguyen Du",
        "Ho Chi Minh City",
        "116 Nguyen Du, District 1",
        [("Hall 1", LARGE), ("Hall 2", MEDIUM)],
    ),
]


def _movies() -> list[Movie]:
    return [
        Movie(
            title=title,
            synopsis=f"{title}: a demo catalog entry.",
            genres=genres,
            duration_minutes=minutes,
            rating=rating,
            language=language,
            release_date=released,
            poster_url=f"https://img.example.com/posters/{title.lower().replace(' ', '-')}.jpg",
        )
        for title, genres, minutes, rating, language, released in MOVIES
    ]


async def _theaters(session: AsyncSession, suffix: str) -> list[Auditorium]:
    halls: list[Auditorium] = []
    for name, city, address, auditoriums in THEATERS:
        theater = await repository.add(
            session, Theater(name=name + suffix, city=city, address=address, time_zone=VIETNAM)
        )
        for hall_name, layout in auditoriums:
            seats = sum(row["seats"] for row in layout["rows"])
            halls.append(Auditorium(theater_id=theater.id, name=hall_name, layout=layout, seat_count=seats))
    session.add_all(halls)
    await session.flush()
    return halls


def _showtimes(movies: list[Movie], halls: list[Auditorium], now: datetime, cleaning: int) -> list[Showtime]:
    zone, today = ZoneInfo(VIETNAM), now.astimezone(ZoneInfo(VIETNAM)).date()
    showtimes = []
    for (h, hall), day, (s, slot) in itertools.product(enumerate(halls), range(DAYS), enumerate(SLOTS)):
        starts = datetime.combine(today + timedelta(days=day), slot, zone).astimezone(UTC)
        if starts <= now + timedelta(minutes=10):
            continue
        movie = movies[(day * len(SLOTS) + s + h * 3) % len(movies)]
        ends = starts + timedelta(minutes=movie.duration_minutes)
        showtimes.append(
            Showtime(
                movie_id=movie.id, auditorium_id=hall.id, theater_id=hall.theater_id, starts_at=starts,
                ends_at=ends, turnaround_ends_at=ends + timedelta(minutes=cleaning), currency="VND", **PRICES,
            )
        )  # fmt: skip
    return showtimes


async def seed_demo_data(
    session: AsyncSession, cleaning_minutes: int, now: datetime, name: str = "demo", suffix: str = ""
) -> bool:
    """Insert the demo programme once; False when the seed ``name`` was already applied.
    ``suffix`` is appended to the theater names (tests seed beside the real demo data)."""
    if not await repository.claim_seed(session, name):
        return False
    movies = _movies()
    session.add_all(movies)
    await session.flush()
    halls = await _theaters(session, suffix)
    session.add_all(_showtimes(movies, halls, now, cleaning_minutes))
    await session.flush()
    return True
