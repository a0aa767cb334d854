"""The booking web page in a real browser (Debian's chromium driven by Playwright) through the gateway.

Run by scripts/test.sh against the running system (GATEWAY_URL). With WEB_SCREENSHOTS_DIR set, the
seat map and the confirmation page are saved there as PNGs (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect

from movie_service.seed import MOVIES

pytestmark = pytest.mark.system

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Popcorn-Seats-2026!"
GOOD_CARD = "4242 4242 4242 4242"
DEMO_TITLES = {movie[0] for movie in MOVIES}
DECLINED_CARD = "4000000000000002"
SLOW = 30_000  # ms: payment -> event -> booking confirmed
expect.set_options(
    timeout=15_000
)  # sign-up hashes the password twice (register, log in): seconds on a busy box


@pytest.fixture(scope="module")
def gateway_url() -> str:
    return os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def api(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
async def contexts() -> AsyncIterator[list[BrowserContext]]:
    """Browser contexts (separate sessions) that reach only the gateway; closed after the test."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def open_page(
    browser: Browser, contexts: list[BrowserContext], gateway_url: str, width: int
) -> tuple[Page, list[str]]:
    """A page in a new session of `width` CSS pixels, and the list its uncaught script errors go to."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    contexts.append(context)
    # Nothing from outside: poster URLs of the demo data point elsewhere and must fall back.
    await context.route(re.compile(r"^(?!" + re.escape(gateway_url) + ")"), lambda route: route.abort())
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


async def bookable_showtime(api: httpx.AsyncClient) -> dict[str, Any]:
    """A showtime of the demo programme starting in 2 hours or more (random, so reruns and other
    tests rarely collide). Of the demo programme: test_schemathesis writes movies and showtimes
    as the admin, with titles the search cannot find (control characters, no word at all);
    picking one of theirs failed this test once in CI."""
    answer = await api.get("/api/movies/showtimes", params={"limit": 100})
    answer.raise_for_status()
    soon = datetime.now(UTC) + timedelta(hours=2)
    later = [
        s
        for s in answer.json()["items"]
        if datetime.fromisoformat(s["starts_at"]) > soon and s["movie_title"] in DEMO_TITLES
    ]
    assert later, "the demo programme has no showtime two hours ahead"
    return random.choice(later)


async def free_pair(api: httpx.AsyncClient, showtime_id: str) -> tuple[str, str]:
    """Two available seats side by side (seat n and n+1 of one row)."""
    answer = await api.get(f"/api/movies/showtimes/{showtime_id}/seats")
    answer.raise_for_status()
    free = {
        (s["row"], s["number"]): s["seat_id"] for s in answer.json()["seats"] if s["status"] == "available"
    }
    pairs = [(seat, free[(row, n + 1)]) for (row, n), seat in free.items() if (row, n + 1) in free]
    assert pairs, "no two free seats side by side"
    return random.choice(pairs)


async def search_result(page: Page, movie_title: str) -> Locator:
    """The one link to ``movie_title`` in the search's results, once they are shown; if there is
    not exactly one, the test fails with what the page shows instead (a click would only time out)."""
    await expect(page).to_have_url(re.compile(r"/\?q="))
    await expect(page.locator(".movie-grid")).to_have_attribute("aria-busy", "false")
    link = page.get_by_role("link", name=movie_title, exact=True)
    if await link.count() != 1:
        shown = " | ".join((await page.locator("#main").inner_text()).split("\n"))
        pytest.fail(
            f"searching {movie_title!r} shows {await link.count()} links to it; the page: {shown[:1500]}"
        )
    return link


async def sign_up(page: Page, gateway_url: str, next_path: str) -> str:
    """Create a fresh account through the sign-up form; it returns to next_path."""
    username = f"web{uuid.uuid4().hex[:12]}"
    await page.goto(f"{gateway_url}/signup?next={next_path}")
    await page.get_by_label("Email").fill(f"{username}@example.com")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(f"{gateway_url}{next_path}")
    await expect(page.get_by_test_id("username")).to_have_text(username)
    return username


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("WEB_SCREENSHOTS_DIR")
    if folder:
        await page.mouse.move(0, 0)  # no hover effect in the picture
        # full page (the folder is created); the sticky seat summary drawn where it belongs in the flow
        await page.screenshot(
            path=str(Path(folder) / name), full_page=True, style=".summary{position:static}"
        )


def seat(page: Page, seat_id: str) -> Any:
    return page.locator(f'[data-seat="{seat_id}"]')


async def test_sign_up_book_two_seats_pay_and_see_the_confirmation(
    browser: Browser, contexts: list[BrowserContext], gateway_url: str, api: httpx.AsyncClient
) -> None:
    showtime = await bookable_showtime(api)
    first, second = await free_pair(api, showtime["id"])
    page, errors = await open_page(browser, contexts, gateway_url, width=1100)

    # Find the movie by searching, then its showtime by date and theater.
    await page.goto(f"{gateway_url}/")
    await page.get_by_label("Search titles").fill(showtime["movie_title"])
    await page.get_by_role("button", name="Search").click()
    await (await search_result(page, showtime["movie_title"])).click()
    local_day = (
        datetime.fromisoformat(showtime["starts_at"]).astimezone(ZoneInfo(showtime["time_zone"])).date()
    )
    await page.locator(f'[data-date="{local_day.isoformat()}"]').click()
    await page.get_by_label("Theater").select_option(showtime["theater_id"])
    await page.locator(f'a[href="/showtimes/{showtime["id"]}"]').click()

    # One seat by mouse, the next by keyboard.
    await seat(page, first).click()
    await expect(seat(page, first)).to_have_attribute("aria-pressed", "true")
    await page.keyboard.press("ArrowRight")
    await expect(seat(page, second)).to_be_focused()
    await page.keyboard.press("Space")
    await expect(seat(page, second)).to_have_attribute("aria-pressed", "true")

    # Holding needs an account: sign up, come back with the same seats still chosen.
    await page.get_by_role("button", name="Hold 2 seats").click()
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_role("link", name="Create an account").click()
    username = f"web{uuid.uuid4().hex[:12]}"
    await page.get_by_label("Email").fill(f"{username}@example.com")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(f"{gateway_url}/showtimes/{showtime['id']}")
    await expect(page.get_by_test_id("selection")).to_contain_text(f"{first}, {second}")

    await page.get_by_role("button", name="Hold 2 seats").click()
    await expect(page).to_have_url(re.compile(r"/checkout/[0-9a-f-]{36}$"))
    booking_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_test_id("countdown")).to_have_text(
        re.compile(r"Seats held for [0-9]+:[0-5][0-9]")
    )
    await expect(page.get_by_test_id("seats")).to_have_text(f"{first}, {second}")
    await screenshot(page, "checkout.png")
    await page.get_by_label("Card number").fill(GOOD_CARD)
    await page.get_by_role("button", name=re.compile("^Pay ")).click()

    await expect(page).to_have_url(f"{gateway_url}/bookings/{booking_id}")
    await expect(page.get_by_role("heading", name="You're booked!")).to_be_visible(timeout=SLOW)
    await expect(page.get_by_test_id("reference")).to_have_text(booking_id[:8].upper())
    await expect(page.get_by_test_id("status")).to_have_text("confirmed")
    await screenshot(page, "confirmation.png")

    # The seats now show as sold on the live map.
    await page.goto(f"{gateway_url}/showtimes/{showtime['id']}")
    await expect(seat(page, first)).to_have_attribute("data-status", "booked", timeout=10_000)
    await expect(seat(page, second)).to_have_attribute("data-status", "booked")
    await page.locator(f'.seat-row:has([data-seat="{first}"]) .seat[data-status="available"]').last.click()
    await screenshot(page, "seat-map.png")  # sold, chosen (and maybe others' held) seats

    # My bookings lists it; cancelling it (a refund) is confirmed on the page.
    await page.get_by_role("link", name="My bookings").click()
    reference = booking_id[:8].upper()
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name=f"Cancel booking {reference}").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"Booking {reference} was cancelled. The payment will be refunded."
    )
    await expect(page.get_by_role("button", name=f"Cancel booking {reference}")).to_have_count(0)
    assert errors == []


async def test_two_sessions_race_for_one_seat_and_the_loser_is_told(
    browser: Browser, contexts: list[BrowserContext], gateway_url: str, api: httpx.AsyncClient
) -> None:
    showtime = await bookable_showtime(api)
    wanted, _ = await free_pair(api, showtime["id"])
    seat_path = f"/showtimes/{showtime['id']}"
    desktop, desktop_errors = await open_page(browser, contexts, gateway_url, width=1100)
    phone, phone_errors = await open_page(browser, contexts, gateway_url, width=375)
    await asyncio.gather(sign_up(desktop, gateway_url, seat_path), sign_up(phone, gateway_url, seat_path))

    for page in (desktop, phone):
        await seat(page, wanted).click()
        await expect(seat(page, wanted)).to_have_attribute("aria-pressed", "true")
    await asyncio.gather(*(p.get_by_role("button", name="Hold 1 seat").click() for p in (desktop, phone)))

    await expect(desktop.get_by_role("alert").or_(desktop.get_by_test_id("countdown"))).to_be_visible()
    winner, loser = (desktop, phone) if "/checkout/" in desktop.url else (phone, desktop)
    await expect(winner).to_have_url(re.compile(r"/checkout/"))
    await expect(loser.get_by_role("alert")).to_have_text(
        f"Sorry, seat {wanted} was just taken by someone else. Please choose other seats."
    )
    await expect(seat(loser, wanted)).to_have_attribute("data-status", "held")
    await expect(seat(loser, wanted)).to_have_attribute("aria-pressed", "false")
    assert "/checkout/" not in loser.url
    await screenshot(loser, "seat-taken.png")

    # The winner's card is declined: the seat stays held while attempts are left (the form stays
    # open); the last allowed decline releases it, and it returns to the loser's live map.
    for left in ("2 attempts left", "1 attempt left"):
        await winner.get_by_label("Card number").fill(DECLINED_CARD)
        await winner.get_by_role("button", name=re.compile("^Pay ")).click()
        await expect(winner.get_by_role("alert")).to_contain_text(f"still held: try another card ({left})")
        await expect(winner.get_by_role("button", name=re.compile("^Pay "))).to_be_enabled()
    await expect(seat(loser, wanted)).to_have_attribute("data-status", "held")
    await winner.get_by_label("Card number").fill(DECLINED_CARD)
    await winner.get_by_role("button", name=re.compile("^Pay ")).click()
    await expect(winner.get_by_role("alert")).to_contain_text("That was the last attempt for this booking")
    await expect(seat(loser, wanted)).to_have_attribute("data-status", "available", timeout=SLOW)
    assert desktop_errors == [] and phone_errors == []
