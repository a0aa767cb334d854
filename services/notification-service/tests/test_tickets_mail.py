"""The tickets mail's files: each seat's QR code inline (``cid:``) and the showtime's ``.ics``.

The QR code images are read back with zxing-cpp's reader (from the PNG's own pixels, decoded
here); the calendar file is read back with icalendar.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import icalendar
import zxingcpp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUIET_ZONE = 4  # modules of white around a QR code


def shape(part: EmailMessage) -> Any:
    """The MIME tree as nested (content type, [children]) / content type."""
    if not part.is_multipart():
        return part.get_content_type()
    children = [shape(child) for child in part.iter_parts()]  # type: ignore[arg-type]
    return (part.get_content_type(), children)


def files(mail: EmailMessage, content_type: str) -> list[EmailMessage]:
    return [part for part in mail.walk() if part.get_content_type() == content_type]  # type: ignore[misc]


def png_pixels(data: bytes) -> list[list[int]]:
    """A black-and-white PNG (bit depth 1, greyscale) as rows of 0 (black) / 1 (white)."""
    assert data[:8] == PNG_SIGNATURE
    position, idat, header = 8, b"", b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) == (1, 0), "black and white"
    return _unfiltered_rows(zlib.decompress(idat), width, height)


def _unfiltered_rows(raw: bytes, width: int, height: int) -> list[list[int]]:
    stride, above, rows = (width + 7) // 8, bytes((width + 7) // 8), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        assert kind in (0, 2), f"PNG filter {kind} (None and Up are read here)"
        line = bytes((a + b) & 0xFF for a, b in zip(line, above, strict=True)) if kind == 2 else line
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        above = line
    return rows


def assert_png_is_the_qr_code_of(data: bytes, code: str) -> None:
    """A QR code reader reads ``code`` from the image's pixels: error correction M, square
    modules of 4 pixels or more, and a white quiet zone of 4 modules around the symbol."""
    pixels = png_pixels(data)
    size = len(pixels)
    assert size == len(pixels[0]), "square"
    grey = bytes(255 * pixel for row in pixels for pixel in row)
    read = zxingcpp.read_barcode(
        memoryview(grey).cast("B", (size, size)), formats=zxingcpp.BarcodeFormat.QRCode, is_pure=True
    )
    assert read is not None and read.valid, "no QR code in the image"
    assert (read.text, read.ec_level) == (code, "M")
    # The symbol's top left corner (its finder pattern's dark border) gives the module size.
    top = next(y for y, row in enumerate(pixels) if 0 in row)
    left = pixels[top].index(0)
    scale = pixels[top][left:].index(1) // 7  # the finder pattern is 7 modules wide
    assert top == left == QUIET_ZONE * scale and scale >= 4, (top, left, scale)
    assert all(pixel == 1 for pixel in pixels[0] + pixels[-1]), "a white quiet zone"


def calendar_of(mail: EmailMessage) -> tuple[bytes, icalendar.Calendar]:
    [attached] = files(mail, "text/calendar")
    assert attached.get_content_disposition() == "attachment"
    assert (attached.get_filename() or "").endswith(".ics")
    raw = attached.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw, icalendar.Calendar.from_ical(raw)


async def test_each_ticket_s_qr_code_is_an_inline_image_the_html_shows(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any
) -> None:
    user = new_user()
    event = await publish("booking.confirmed", user)
    [mail] = await mails(user.email)
    message = mail.message
    related = ("multipart/related", ["text/html", "image/png", "image/png"])
    alternative = ("multipart/alternative", ["text/plain", related])
    assert shape(message) == ("multipart/mixed", [alternative, "text/calendar"])
    images = files(message, "image/png")
    content_ids = [str(image["Content-ID"]).strip("<>") for image in images]
    html = mail.part("html")
    assert re.findall(r'src="cid:([^"]+)"', html) == content_ids and len(set(content_ids)) == 2
    plain = mail.part("plain")
    for image, ticket in zip(images, event["data"]["tickets"], strict=True):
        assert image.get_content_disposition() == "inline"
        data = image.get_content()
        assert isinstance(data, bytes)
        assert_png_is_the_qr_code_of(data, ticket["code"])
        assert f"Seat {ticket['seat']}" in html and ticket["code"] in html
        assert f"Seat {ticket['seat']}: {ticket['code']}" in plain
    assert "12 Riverside Walk, Hanoi" in plain and "12 Riverside Walk, Hanoi" in html


async def test_the_ics_is_the_showtime_in_the_theater_s_time_zone(
    new_user: Any, publish: Any, mails: Any
) -> None:
    user = new_user()
    event = await publish("booking.confirmed", user, time_zone="Asia/Ho_Chi_Minh")
    [mail] = await mails(user.email)
    raw, calendar = calendar_of(mail.message)
    data = event["data"]
    lines = raw.split(b"\r\n")
    assert raw.endswith(b"\r\n") and all(b"\n" not in line and len(line) <= 75 for line in lines)
    [vevent] = calendar.walk("VEVENT")
    [zone] = calendar.walk("VTIMEZONE")
    assert str(vevent["UID"]) == data["booking_id"] and str(zone["TZID"]) == "Asia/Ho_Chi_Minh"
    assert vevent["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
    assert b"DTSTART;TZID=Asia/Ho_Chi_Minh:" in raw and b"T023000" in raw  # 19:30 UTC is 02:30 there
    starts = datetime.fromisoformat(data["starts_at"])
    assert vevent.decoded("DTSTART") == starts
    assert vevent.decoded("DTEND") == starts + timedelta(hours=2)  # the event carries no duration
    assert str(vevent["SUMMARY"]) == "Dune: Part Two"
    assert str(vevent["LOCATION"]) == "Riverside Cinema, 12 Riverside Walk, Hanoi"
    assert "C4, C5" in str(vevent["DESCRIPTION"])


async def test_without_a_time_zone_the_ics_is_in_utc(new_user: Any, publish: Any, mails: Any) -> None:
    user = new_user()
    event = await publish("booking.confirmed", user, time_zone=None)
    [mail] = await mails(user.email)
    raw, calendar = calendar_of(mail.message)
    [vevent] = calendar.walk("VEVENT")
    assert calendar.walk("VTIMEZONE") == [] and b"TZID" not in raw
    assert re.search(rb"\r\nDTSTART:\d{8}T193000Z\r\n", raw)
    assert vevent.decoded("DTSTART") == datetime.fromisoformat(event["data"]["starts_at"])


async def test_an_event_from_before_tickets_still_gets_the_mail_and_the_ics(
    new_user: Any, spy: Any, make_event: Any, mails: Any
) -> None:
    """booking.confirmed without tickets and theater_address: today's mail, the calendar attached."""
    user = new_user()
    event = make_event("booking.confirmed", user)
    del event["data"]["tickets"], event["data"]["theater_address"]
    await spy.publish("booking.confirmed", event)
    [mail] = await mails(user.email)
    alternative = ("multipart/alternative", ["text/plain", "text/html"])
    assert shape(mail.message) == ("multipart/mixed", [alternative, "text/calendar"])
    assert "cid:" not in mail.part("html") and "Address" not in mail.part("plain")
    assert event["data"]["booking_id"] in mail.part("plain")
    _, calendar = calendar_of(mail.message)
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["LOCATION"]) == "Riverside Cinema" and str(vevent["UID"]) == event["data"]["booking_id"]


async def test_other_mails_stay_plain_and_html_only(new_user: Any, publish: Any, mails: Any) -> None:
    user = new_user()
    await publish("booking.expired", user)
    [mail] = await mails(user.email)
    assert shape(mail.message) == ("multipart/alternative", ["text/plain", "text/html"])


async def test_a_re_sent_tickets_mail_carries_the_same_qr_codes(
    client: httpx.AsyncClient, new_user: Any, publish: Any, mails: Any, db: AsyncEngine
) -> None:
    """The admin's re-send renders from the stored context: the files are made again from it."""
    user, admin = new_user(), new_user(roles=("user", "admin"))
    event = await publish("booking.confirmed", user)
    await mails(user.email)
    [row] = (await client.get("/notifications", headers=user.headers)).json()["items"]
    async with db.begin() as conn:  # as if the first delivery had failed for good
        mark = "UPDATE notification.notifications SET status = 'failed' WHERE id = :id"
        await conn.execute(text(mark), {"id": row["id"]})
    resent = await client.post(f"/notifications/{row['id']}/retry", headers=admin.headers)
    assert resent.status_code == 200, resent.text
    first, second = await mails(user.email, 2)
    assert shape(second.message) == shape(first.message)
    for image, ticket in zip(files(second.message, "image/png"), event["data"]["tickets"], strict=True):
        assert_png_is_the_qr_code_of(image.get_content(), ticket["code"])
