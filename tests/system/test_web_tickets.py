"""The ticket wallet (My bookings) and the staff's check-in page (/staff/scan) in a real browser.

Two ways to run, the same tests:
- ``GATEWAY_URL`` set (scripts/test.sh): the whole system through the gateway. A showtime that
  starts in 50 minutes (doors open, cancellable) is scheduled in a test theater by the admin, a
  customer books and pays two seats there, and a user made staff by the admin checks them in.
- without it: the page alone. Its files are served from web/ and the few API calls it makes are
  answered by ``StubApi`` as docs/contracts.md describes them (tokens, bookings, tickets, QR
  codes that need the bearer token, check-in with its refusals), so the page's own behaviour is
  tested before, and apart from, the backend.
Either way, the words the page shows and speaks for each refusal are checked against canned
check-in answers (the only stub in the gateway run).
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import segno
from playwright.async_api import Browser, BrowserContext, Page, Request, Route, async_playwright, expect

from servicekit.testing import wait_until

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_URL = os.environ.get("GATEWAY_URL", "").rstrip("/")
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "AdminDevPass123!")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A camera that shows a test pattern, allowed without asking (the BarcodeDetector is faked).
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
STAFF_ZONE = "Asia/Ho_Chi_Minh"  # the browser's time zone: the door's
PASSWORD = "Door-Check-2026!"
STUB_ORIGIN = (
    "http://127.0.0.1:9"  # never connected to: every request is answered by the stub (a secure context)
)
expect.set_options(timeout=15_000)

# Records what the page says aloud instead of saying it.
SPEECH_RECORDER = """
window.__spoken = [];
Object.defineProperty(window, "speechSynthesis", {
  configurable: true,
  value: { speak: (utterance) => window.__spoken.push(utterance.text), cancel: () => {} },
});
window.SpeechSynthesisUtterance ??= class { constructor(text) { this.text = text; } };
"""
# A QR reader that "sees" window.__qrInView (the camera itself is Chromium's fake device).
FAKE_BARCODE_DETECTOR = """
window.__qrInView = null;
window.__detections = 0;
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code"]; }
  async detect() {
    window.__detections += 1;
    return window.__qrInView ? [{ format: "qr_code", rawValue: window.__qrInView }] : [];
  }
};
"""


@dataclass
class Account:
    username: str
    password: str = PASSWORD


@dataclass
class Customer(Account):
    """A customer with a confirmed booking of two seats, and its tickets as issued."""

    booking_id: str = ""
    tickets: list[dict[str, Any]] = field(default_factory=list)
    theater_id: str = ""
    other_theater_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    origin: str

    async def attach(self, context: BrowserContext) -> None: ...

    async def customer(self) -> Customer: ...

    async def staff_member(self) -> Account: ...

    async def tickets_of(self, customer: Customer) -> list[dict[str, Any]]: ...


# --- the page alone: web/ from disk and the API as contracts.md describes it ------------------


def qr_svg(code: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(code).save(out, kind="svg", scale=4)
    return out.getvalue()


def _json(status: int, body: Any) -> dict[str, Any]:
    return {"status": status, "content_type": "application/json", "body": json.dumps(body)}


def _error(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    error = {"code": code, "message": message, "request_id": "stub", "details": details}
    return _json(status, {"error": error})


class StubApi:
    """Serves web/ (any other path is index.html, as NGINX's try_files) and answers the API."""

    origin = STUB_ORIGIN

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}  # token -> account
        self.bookings: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}  # code -> ticket with its booking_id

    async def attach(self, context: BrowserContext) -> None:
        await context.route("**/*", self.answer)

    async def answer(self, route: Route, request: Request) -> None:
        path = urlsplit(request.url).path
        if not path.startswith("/api/"):
            return await route.fulfill(**self.web_file(path))
        token = (await request.all_headers()).get("authorization", "").removeprefix("Bearer ")
        await route.fulfill(**self.api(request.method, path, request, self.accounts.get(token)))

    def web_file(self, path: str) -> dict[str, Any]:
        file = (ROOT / "web" / path.lstrip("/")).resolve()
        if not file.is_file() or ROOT / "web" not in file.parents:
            file = ROOT / "web" / "index.html"
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return {"status": 200, "content_type": content_type, "body": file.read_bytes()}

    def api(self, method: str, path: str, request: Request, user: dict[str, Any] | None) -> dict[str, Any]:
        if (method, path) == ("POST", "/api/auth/token"):
            return self.log_in(parse_qs(request.post_data or ""))
        if path == "/api/movies/theaters":
            items = [{"id": "theater-riverside", "name": "Riverside", "city": "Hanoi"}]
            return _json(200, {"items": [*items, {"id": "theater-other", "name": "Other", "city": "Hue"}]})
        if user is None:
            return _error(401, "unauthorized", "Not authenticated")
        if path == "/api/auth/me":
            return _json(200, {"username": user["username"], "roles": user["roles"]})
        if path == "/api/bookings/bookings":
            mine = [b for b in self.bookings.values() if b["owner"] == user["username"]]
            return _json(200, {"items": mine, "total": len(mine), "limit": 20, "offset": 0})
        if method == "POST" and path == "/api/bookings/checkin":
            return self.check_in(user, request.post_data_json or {})
        return self.ticket_read(path, user)

    def log_in(self, form: dict[str, list[str]]) -> dict[str, Any]:
        account = next((a for a in self.accounts.values() if a["username"] == form["username"][0]), None)
        if account is None or account["password"] != form["password"][0]:
            return _error(401, "invalid_credentials", "Wrong username or password")
        token = next(t for t, a in self.accounts.items() if a is account)
        return _json(
            200, {"access_token": token, "refresh_token": f"refresh-{token}", "token_type": "bearer"}
        )

    def ticket_read(self, path: str, user: dict[str, Any]) -> dict[str, Any]:
        if match := re.fullmatch(r"/api/bookings/bookings/([^/]+)/tickets", path):
            booking = self.bookings.get(match[1])
            if booking is None or booking["owner"] != user["username"]:
                return _error(404, "not_found", "Booking not found")
            return _json(
                200, [self.ticket_out(t) for t in self.tickets.values() if t["booking_id"] == match[1]]
            )
        if match := re.fullmatch(r"/api/bookings/tickets/([^/]+)/qr\.svg", path):
            ticket = self.tickets.get(match[1])
            owner = ticket and self.bookings[ticket["booking_id"]]["owner"] == user["username"]
            if not (owner or "staff" in user["roles"]):
                return _error(404, "not_found", "Ticket not found")
            return {"status": 200, "content_type": "image/svg+xml", "body": qr_svg(match[1])}
        return _error(404, "not_found", "Not found")

    def ticket_out(self, ticket: dict[str, Any]) -> dict[str, Any]:
        fields = {name: ticket[name] for name in ("code", "seat", "status", "admitted_at")}
        return {**fields, "qr_url": f"/api/bookings/tickets/{ticket['code']}/qr.svg"}

    def check_in(self, user: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if not {"staff", "admin"} & set(user["roles"]):
            return _error(403, "forbidden", "Staff only")
        ticket = self.tickets.get(body.get("code", ""))
        if ticket is None:
            return _error(404, "not_found", "Unknown ticket")
        booking = self.bookings[ticket["booking_id"]]
        if ticket["status"] == "admitted":
            return _error(409, "already_admitted", "Already admitted", {"admitted_at": ticket["admitted_at"]})
        if body.get("theater_id") not in (None, booking["theater_id"]):
            return _error(409, "wrong_theater", "This ticket is for another theater")
        ticket.update(status="admitted", admitted_at=datetime.now(UTC).isoformat())
        fields = {
            "seat": ticket["seat"],
            "movie_title": booking["movie_title"],
            "starts_at": booking["starts_at"],
        }
        return _json(200, {"admitted": True, **fields, "auditorium": booking["auditorium_name"]})

    def _account(self, roles: list[str]) -> Account:
        account = Account(f"stub{uuid.uuid4().hex[:8]}")
        token = f"token-{secrets.token_hex(8)}"
        self.accounts[token] = {"username": account.username, "password": PASSWORD, "roles": roles}
        return account

    async def staff_member(self) -> Account:
        return self._account(["user", "staff"])

    async def customer(self) -> Customer:
        account = self._account(["user"])
        booking_id = str(uuid.uuid4())
        starts_at = (datetime.now(UTC) + timedelta(minutes=50)).replace(microsecond=0)
        self.bookings[booking_id] = {
            "id": booking_id,
            "owner": account.username,
            "status": "confirmed",
            "showtime_id": str(uuid.uuid4()),
            "seats": ["A1", "A2"],
            "total_amount": 180000,
            "currency": "VND",
            "movie_title": "Dune: Part Two",
            "theater_name": "Riverside",
            "theater_id": "theater-riverside",
            "auditorium_name": "Hall 3",
            "starts_at": starts_at.isoformat(),
            "expires_at": starts_at.isoformat(),
        }
        for seat in ("A1", "A2"):
            code = secrets.token_urlsafe(32)
            self.tickets[code] = {"code": code, "seat": seat, "status": "valid", "admitted_at": None}
            self.tickets[code]["booking_id"] = booking_id
        tickets = [self.ticket_out(t) for t in self.tickets.values() if t["booking_id"] == booking_id]
        return Customer(account.username, PASSWORD, booking_id, tickets, "theater-riverside", "theater-other")

    async def tickets_of(self, customer: Customer) -> list[dict[str, Any]]:
        return [self.ticket_out(t) for t in self.tickets.values() if t["booking_id"] == customer.booking_id]


# --- the whole system through the gateway -----------------------------------------------------


class GatewayApi:
    """Customers, staff and a showtime whose doors are open, made through the public API."""

    origin = GATEWAY_URL

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api

    async def attach(self, context: BrowserContext) -> None:
        # Nothing from outside the gateway (the demo posters point elsewhere).
        outside = re.compile(r"^(?!" + re.escape(GATEWAY_URL) + ")")
        await context.route(outside, lambda route: route.abort())

    async def bearer(self, username: str, password: str) -> dict[str, str]:
        answer = await self.api.post("/api/auth/token", data={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def register(self) -> tuple[Account, str]:
        account = Account(f"door{uuid.uuid4().hex[:10]}")
        body = {
            "email": f"{account.username}@example.com",
            "username": account.username,
            "password": PASSWORD,
        }
        created = await self.api.post("/api/auth/register", json=body)
        assert created.status_code == 201, created.text
        return account, created.json()["id"]

    async def staff_member(self) -> Account:
        account, user_id = await self.register()
        admin = await self.bearer(ADMIN_USERNAME, ADMIN_PASSWORD)
        granted = await self.api.post(
            f"/api/auth/users/{user_id}/roles", json={"role": "staff"}, headers=admin
        )
        assert granted.status_code in (200, 201, 204), granted.text
        return account

    async def door_showtime(self, admin: dict[str, str]) -> dict[str, Any]:
        """A showtime in 50 minutes in a new hall of the test theater: doors open, still cancellable."""
        theater = await self.test_theater(admin)
        hall = {
            "theater_id": theater["id"],
            "name": f"Door {uuid.uuid4().hex[:6]}",
            "layout": {"rows": [{"seats": 4}]},
        }
        auditorium = await self.api.post("/api/movies/auditoriums", json=hall, headers=admin)
        assert auditorium.status_code == 201, auditorium.text
        movie = (await self.api.get("/api/movies/movies", params={"limit": 1})).json()["items"][0]
        starts_at = (datetime.now(UTC) + timedelta(minutes=50)).isoformat()
        body = {"movie_id": movie["id"], "auditorium_id": auditorium.json()["id"], "starts_at": starts_at}
        showtime = await self.api.post(
            "/api/movies/showtimes", json={**body, "prices": {"standard": 90000}}, headers=admin
        )
        assert showtime.status_code == 201, showtime.text
        return dict(showtime.json())

    async def test_theater(self, admin: dict[str, str]) -> dict[str, Any]:
        listed = (await self.api.get("/api/movies/theaters", params={"city": "Doorville"})).json()["items"]
        if listed:
            return dict(listed[0])
        body = {
            "name": "Door Test Cinema",
            "city": "Doorville",
            "address": "1 Door Street",
            "time_zone": STAFF_ZONE,
        }
        created = await self.api.post("/api/movies/theaters", json=body, headers=admin)
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def other_theater(self, theater_id: str) -> str:
        listed = (await self.api.get("/api/movies/theaters", params={"limit": 100})).json()["items"]
        return str(next(t["id"] for t in listed if t["id"] != theater_id))

    async def customer(self) -> Customer:
        showtime = await self.door_showtime(await self.bearer(ADMIN_USERNAME, ADMIN_PASSWORD))
        account, _ = await self.register()
        headers = await self.bearer(account.username, account.password)
        seat_map = (await self.api.get(f"/api/movies/showtimes/{showtime['id']}/seats")).json()
        seats = [s["seat_id"] for s in seat_map["seats"]][:2]
        booked = await self.api.post(
            "/api/bookings/book", json={"showtime_id": showtime["id"], "seat_ids": seats}, headers=headers
        )
        assert booked.status_code == 201, booked.text
        booking_id = booked.json()["id"]
        payment = {
            "booking_id": booking_id,
            "payment_method": "credit_card",
            "card_number": "4242424242424242",
        }
        paid = await self.api.post(
            "/api/payments/process", json=payment, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert paid.status_code == 201, paid.text
        customer = Customer(
            account.username, PASSWORD, booking_id, [], showtime["theater_id"], headers=headers
        )
        customer.other_theater_id = await self.other_theater(showtime["theater_id"])
        customer.tickets = await wait_until(
            lambda: self.tickets_of(customer), within=30, what="tickets issued"
        )
        return customer

    async def tickets_of(self, customer: Customer) -> list[dict[str, Any]]:
        answer = await self.api.get(
            f"/api/bookings/bookings/{customer.booking_id}/tickets", headers=customer.headers
        )
        return list(answer.json()) if answer.status_code == 200 else []


# --- fixtures and page helpers -------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    if not GATEWAY_URL:
        yield StubApi()
        return
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=15) as api:
        yield GatewayApi(api)


@pytest.fixture
async def contexts() -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def open_page(
    browser: Browser, contexts: list[BrowserContext], backend: Backend, *scripts: str
) -> tuple[Page, list[str]]:
    """A new session in the door's time zone; what it speaks goes to window.__spoken."""
    context = await browser.new_context(viewport={"width": 1000, "height": 900}, timezone_id=STAFF_ZONE)
    contexts.append(context)
    await backend.attach(context)
    for script in (SPEECH_RECORDER, *scripts):
        await context.add_init_script(script)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


async def log_in(page: Page, backend: Backend, account: Account, next_path: str) -> None:
    await page.goto(f"{backend.origin}/login?next={next_path}")
    await page.get_by_label("Username or email").fill(account.username)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{backend.origin}{next_path}")
    await expect(page.get_by_test_id("username")).to_have_text(account.username)


async def scan(page: Page, code: str) -> None:
    """Type (or paste) a code and press Enter, as a handheld scanner does."""
    field = page.get_by_label("Ticket code")
    await field.fill(code)
    await field.press("Enter")


async def spoken(page: Page) -> list[str]:
    return list(await page.evaluate("window.__spoken"))


async def screenshot(page: Page, name: str) -> None:
    """With WEB_SCREENSHOTS_DIR set, the page is saved there as a PNG (as test_web_booking does)."""
    folder = os.environ.get("WEB_SCREENSHOTS_DIR")
    if folder:
        await page.screenshot(path=str(Path(folder) / name), full_page=True)


def local_clock(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(STAFF_ZONE)).strftime("%H:%M")


# --- the wallet -------------------------------------------------------------------------------


async def test_my_bookings_shows_a_qr_code_per_seat_and_prints_only_the_tickets(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    customer = await backend.customer()
    page, errors = await open_page(browser, contexts, backend)
    await log_in(page, backend, customer, "/bookings")
    cards = page.get_by_test_id("ticket")
    await expect(cards).to_have_count(2)
    for card, ticket in zip(await cards.all(), customer.tickets, strict=True):
        await expect(card).to_contain_text(f"Seat {ticket['seat']}")
        await expect(card).to_contain_text(ticket["code"])
        await expect(card.get_by_test_id("ticket-status")).to_have_text("Valid")
        qr = card.get_by_role("img", name=f"QR code of the ticket for seat {ticket['seat']}")
        await expect(qr).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the token
        await wait_until(
            lambda qr=qr: qr.evaluate("img => img.complete && img.naturalWidth > 0"), what="QR drawn"
        )

    await screenshot(page, "ticket-wallet.png")
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(page.get_by_role("button", name="Print tickets")).to_be_hidden()
    await expect(page.get_by_role("heading", name="My bookings")).to_be_hidden()
    await expect(cards.first).to_be_visible()
    await screenshot(page, "ticket-wallet-print.png")
    assert errors == []


# --- the scan page ----------------------------------------------------------------------------


async def test_staff_admit_a_ticket_and_the_second_scan_is_refused(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    customer, staff = await backend.customer(), await backend.staff_member()
    page, errors = await open_page(browser, contexts, backend)
    await log_in(page, backend, staff, "/")
    await page.get_by_role("link", name="Scan tickets").click()
    await expect(page).to_have_url(f"{backend.origin}/staff/scan")
    field, result = page.get_by_label("Ticket code"), page.get_by_test_id("scan-result")
    await expect(field).to_be_focused()
    first, second = customer.tickets

    await scan(page, first["code"])
    await expect(result).to_have_attribute("data-outcome", "admitted")
    await expect(result.locator(".scan-headline")).to_have_text("Admitted")
    await expect(result).to_contain_text(f"Seat {first['seat']}")
    await expect(field).to_have_value("")
    await expect(field).to_be_focused()
    assert await spoken(page) == [f"Admitted, seat {first['seat']}"]
    await screenshot(page, "scan-admitted.png")

    [admitted] = [t for t in await backend.tickets_of(customer) if t["code"] == first["code"]]
    assert admitted["status"] == "admitted"
    at = local_clock(admitted["admitted_at"])
    await scan(page, first["code"])
    await expect(result).to_have_attribute("data-outcome", "already_admitted")
    await expect(result).to_have_text(f"Already admitted at {at}")
    await expect(page.get_by_test_id("scan-log").locator("li")).to_have_count(2)
    assert (await spoken(page))[-1] == f"Already admitted at {at}"

    await scan(page, f"no-such-ticket-{uuid.uuid4().hex}")
    await expect(result).to_have_attribute("data-outcome", "unknown")
    await expect(result).to_have_text("Unknown ticket")

    await page.get_by_label("This door's theater").select_option(customer.other_theater_id)
    await scan(page, second["code"])
    await expect(result).to_have_attribute("data-outcome", "wrong_theater")
    await expect(result).to_contain_text("Wrong theater")
    assert (await spoken(page))[-1] == "wrong theater"
    await expect(field).to_be_focused()
    await screenshot(page, "scan-refused.png")
    assert errors == []


async def test_a_customer_sees_no_scan_page(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    customer = await backend.customer()
    page, errors = await open_page(browser, contexts, backend)
    await log_in(page, backend, customer, "/bookings")
    await expect(page.get_by_role("link", name="My bookings")).to_be_visible()
    await expect(page.get_by_role("link", name="Scan tickets")).to_have_count(0)
    await page.goto(f"{backend.origin}/staff/scan")
    await expect(page.get_by_role("alert")).to_have_text("This page is for cinema staff.")
    await expect(page.get_by_label("Ticket code")).to_have_count(0)
    assert errors == []


async def test_the_camera_reads_a_ticket_once_while_it_is_held_up(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    customer, staff = await backend.customer(), await backend.staff_member()
    page, errors = await open_page(browser, contexts, backend, FAKE_BARCODE_DETECTOR)
    await log_in(page, backend, staff, "/staff/scan")
    await page.get_by_role("button", name="Scan with camera").click()
    await expect(page.locator("video")).to_be_visible()
    first, second = customer.tickets

    await page.evaluate("code => (window.__qrInView = code)", first["code"])
    await expect(page.get_by_test_id("scan-result")).to_have_attribute("data-outcome", "admitted")
    seen = await page.evaluate("window.__detections")
    await page.wait_for_function(f"window.__detections >= {seen + 4}")  # still in view, read again
    await page.evaluate("code => (window.__qrInView = code)", second["code"])
    await expect(page.get_by_test_id("scan-result")).to_contain_text(f"Seat {second['seat']}")
    log = page.get_by_test_id("scan-log").locator("li")
    await expect(log).to_have_count(2)  # the first code, held up for several reads, counted once
    await expect(log.first).to_contain_text("Admitted")
    await expect(log.last).to_contain_text("Admitted")
    await page.get_by_role("button", name="Scan with camera").click()
    await expect(page.locator("video")).to_be_hidden()
    assert errors == []


async def test_without_barcode_detector_there_is_the_field_only(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    """Chromium on Linux has no BarcodeDetector (Android, ChromeOS and macOS do)."""
    staff = await backend.staff_member()
    page, errors = await open_page(browser, contexts, backend)
    await log_in(page, backend, staff, "/staff/scan")
    assert not await page.evaluate("'BarcodeDetector' in window")
    await expect(page.get_by_label("Ticket code")).to_be_focused()
    await expect(page.get_by_role("button", name="Scan with camera")).to_have_count(0)
    assert errors == []


# The check-in refusals as the API answers them, and what the page shows and says for each.
REFUSALS = [
    (409, "already_admitted", {"admitted_at": "2026-11-28T12:02:00+00:00"}, "Already admitted at 19:02"),
    (409, "ticket_void", None, "void"),
    (409, "ticket_expired", None, "expired"),
    (409, "too_early", None, "too early"),
    (409, "wrong_theater", None, "wrong theater"),
    (404, "not_found", None, "Unknown ticket"),
]
HEADLINES = {"ticket_void": "Void ticket", "ticket_expired": "Expired ticket", "too_early": "Too early"}


async def test_each_refusal_is_shown_and_spoken_in_words(
    browser: Browser, contexts: list[BrowserContext], backend: Backend
) -> None:
    """Canned check-in answers (in the gateway run too: a real too-early or expired ticket needs
    a showtime hours away or over); everything else is the backend's."""
    staff = await backend.staff_member()
    page, errors = await open_page(browser, contexts, backend)
    answers = iter(REFUSALS)

    async def refuse(route: Route) -> None:
        status, code, details, _ = next(answers)
        await route.fulfill(**_error(status, code, "Refused by the test", details))

    await page.route("**/api/bookings/checkin", refuse)
    await log_in(page, backend, staff, "/staff/scan")
    result = page.get_by_test_id("scan-result")
    for status, code, _, words in REFUSALS:
        await scan(page, f"code-{code}")
        await expect(result).to_have_attribute("data-outcome", "unknown" if status == 404 else code)
        headline = HEADLINES.get(code, words[0].upper() + words[1:])
        await expect(result.locator(".scan-headline")).to_have_text(headline)
        await expect(result).to_have_class(re.compile(r"\bscan-bad\b"))
        assert (await spoken(page))[-1] == words
        await expect(page.get_by_label("Ticket code")).to_be_focused()
    assert errors == []
