"""The files of the tickets mail: each ticket's QR code (PNG, shown inline) and the showtime as
an iCalendar event (``.ics``) to add to a calendar.

Made from the notification's stored context, so a re-sent mail carries them too. About a
millisecond of CPU per QR code: the dispatcher builds them off the event loop.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import zxingcpp

from notification_service.rendering import Attachment, booking_reference, qr_content_id

# booking.confirmed does not carry the movie's duration (docs/contracts.md): the calendar
# entry lasts this long.
SHOWTIME_LENGTH = timedelta(hours=2)
QR_MODULE_PIXELS = 5  # a version 2 symbol (a 22-character ticket code) with its quiet zone: 165 px
QR_QUIET_ZONE = 4  # modules of white around the symbol (ISO 18004's minimum)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CALENDAR_PRODUCT = "-//Movie Booking//Tickets//EN"
# zxing-cpp's module image: one byte a module, 0 dark and 255 light; as "1" dark, "0" light.
_MODULE_BITS = bytes.maketrans(b"\x00\xff", b"10")


def qr_png(code: str) -> bytes:
    """The QR code of a ticket code as a black and white PNG (error correction M).

    Encoded by zxing-cpp (compiled): with segno, pure Python, a ticket's PNG took 1.1-1.5 ms of
    CPU, 0.5 ms here (docs/benchmarks.md).
    """
    symbol = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = symbol.to_image(scale=1, add_quiet_zones=False)
    size = image.shape[1]
    # The image is a buffer (its type stubs say only __array_interface__).
    pixels = bytes(memoryview(image))  # type: ignore[arg-type]
    modules = pixels.translate(_MODULE_BITS).decode()
    rows = [modules[start : start + size] for start in range(0, len(modules), size)]
    return black_and_white_png(rows, QR_MODULE_PIXELS, QR_QUIET_ZONE)


def black_and_white_png(rows: list[str], scale: int, border: int) -> bytes:
    """A 1-bit greyscale PNG of ``rows`` of modules ("1" black, "0" white), ``scale`` pixels a
    module, in a white ``border`` of modules.

    A row of pixels is one integer: its modules' digits, each repeated ``scale`` times.
    """
    size = len(rows[0]) + 2 * border
    quiet_row, margin = "0" * size, "0" * border
    width, stride = size * scale, (size * scale + 7) // 8
    all_white, pad = (1 << width) - 1, stride * 8 - width
    framed = [margin + row + margin for row in rows]
    lines = []
    for row in [quiet_row] * border + framed + [quiet_row] * border:
        pixels = row.replace("0", "w").replace("1", "1" * scale).replace("w", "0" * scale)
        white = ~int(pixels, 2) & all_white  # PNG greyscale: 1 is white
        # Filter type 0 (None), then the pixels, left-aligned in the line's last byte.
        lines += [b"\x00" + (white << pad).to_bytes(stride, "big")] * scale
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"".join(lines))
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _zone(name: str | None) -> tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=64)
def _vtimezone(name: str) -> bytes:
    """The VTIMEZONE a TZID needs (RFC 5545 3.6.5), written once per zone (0.3 ms each time)."""
    return bytes(icalendar.Timezone.from_tzinfo(ZoneInfo(name)).to_ical())


def _calendar_lines() -> tuple[bytes, bytes]:
    """The VCALENDAR's own lines, as icalendar writes them: what opens it, what closes it."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", CALENDAR_PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    written = bytes(calendar.to_ical())
    end = b"END:VCALENDAR\r\n"
    assert written.endswith(end)
    return written[: -len(end)], end


_CALENDAR_OPEN, _CALENDAR_CLOSE = _calendar_lines()


def showtime_calendar(context: dict[str, Any]) -> bytes:
    """One VEVENT for the showtime: local time with its VTIMEZONE when the zone is known, else UTC.

    The calendar's own lines and each zone's VTIMEZONE are written once; the event each time.
    """
    zone = _zone(context.get("time_zone"))
    starts = datetime.fromisoformat(context["starts_at"]).astimezone(zone or UTC)
    timezone = _vtimezone(context["time_zone"]) if zone is not None else b""
    event = bytes(_showtime_event(context, starts).to_ical())
    return _CALENDAR_OPEN + timezone + event + _CALENDAR_CLOSE


def _showtime_event(context: dict[str, Any], starts: datetime) -> icalendar.Event:
    place = [context["theater_name"], context.get("theater_address")]
    seats = ", ".join(context["seats"])
    reference = booking_reference(context["booking_id"])
    event = icalendar.Event()
    event.add("uid", str(context["booking_id"]))
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", starts)
    event.add("dtend", starts + SHOWTIME_LENGTH)
    event.add("summary", context["movie_title"])
    event.add("location", ", ".join(part for part in place if part))
    event.add("description", f"{context['auditorium_name']}, seats {seats}. Booking {reference}.")
    return event


def _file_name_part(text: str) -> str:
    """ASCII letters and digits only: safe in a quoted header parameter."""
    return re.sub(r"[^A-Za-z0-9]", "", text) or "x"


def tickets_mail_files(context: dict[str, Any]) -> tuple[Attachment, ...]:
    """A QR code per ticket (inline, in the tickets' order), then the calendar file.

    An event from before tickets were issued has none: the mail then carries the calendar only.
    """
    booking_id = str(context["booking_id"])
    images = tuple(
        Attachment(
            "image/png",
            f"ticket-{_file_name_part(ticket['seat'])}.png",
            qr_png(ticket["code"]),
            qr_content_id(booking_id, position),
        )
        for position, ticket in enumerate(context.get("tickets") or [], start=1)
    )
    calendar = Attachment(
        'text/calendar; charset="utf-8"; method=PUBLISH',
        f"showtime-{booking_reference(booking_id)}.ics",
        showtime_calendar(context),
    )
    return (*images, calendar)


# The templates whose mails carry files, and what makes them.
FILES_OF_TEMPLATE: dict[str, Callable[[dict[str, Any]], tuple[Attachment, ...]]] = {
    "tickets": tickets_mail_files,
}
