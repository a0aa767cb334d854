"""The files of the tickets mail: each ticket's QR code (PNG, shown inline) and the showtime as
an iCalendar event (``.ics``) to add to a calendar.

Made from the notification's stored context, so a re-sent mail carries them too. A few
milliseconds of CPU per QR code: the dispatcher builds them off the event loop.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import segno

from notification_service.rendering import Attachment, booking_reference, qr_content_id

# booking.confirmed does not carry the movie's duration (docs/contracts.md): the calendar
# entry lasts this long.
SHOWTIME_LENGTH = timedelta(hours=2)
QR_MODULE_PIXELS = 5  # a version 4 symbol (a 43-character code) with its quiet zone: 205 px
QR_QUIET_ZONE = 4  # modules of white around the symbol (ISO 18004's minimum)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CALENDAR_PRODUCT = "-//Movie Booking//Tickets//EN"
# Every one of the 8 masks gives a valid symbol that any reader decodes; letting segno pick
# the one with the lowest penalty score (ISO 18004's readability heuristic) cost 2.7 ms of
# the 4.6 ms a ticket's PNG took (docs/benchmarks.md). A screen-shown, high-contrast code
# scans with any mask; mask 0 is what a fixed choice costs nothing to make.
QR_MASK = 0


def qr_png(code: str) -> bytes:
    """The QR code of a ticket code as a black and white PNG (error correction M or better)."""
    symbol = segno.make_qr(code, error="m", mask=QR_MASK)
    return black_and_white_png(symbol.matrix, QR_MODULE_PIXELS, QR_QUIET_ZONE)


def black_and_white_png(modules: Sequence[Sequence[int]], scale: int, border: int) -> bytes:
    """A 1-bit greyscale PNG of ``modules`` (non-zero: black), ``scale`` pixels a module, in a
    white ``border`` of modules.

    Written here rather than by segno's PNG writer, which spent 75 % of a QR code's CPU
    (pixel by pixel in Python); here a row of modules is one integer, repeated ``scale`` times.
    """
    size = len(modules[0]) + 2 * border
    quiet_row = [0] * size
    framed = [[0] * border + list(row) + [0] * border for row in modules]
    width, stride = size * scale, (size * scale + 7) // 8
    lines = []
    for row in [quiet_row] * border + framed + [quiet_row] * border:
        dark = int("".join(("1" if module else "0") * scale for module in row), 2)
        white = ~dark & ((1 << width) - 1)  # PNG greyscale: 1 is white
        # Filter type 0 (None), then the pixels, left-aligned in the line's last byte.
        lines += [b"\x00" + (white << (stride * 8 - width)).to_bytes(stride, "big")] * scale
    raw = b"".join(lines)
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _zone(name: str | None) -> tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=64)
def _vtimezone(name: str) -> icalendar.Timezone:
    """The VTIMEZONE a TZID needs (RFC 5545 3.6.5); made once per zone (milliseconds each)."""
    return icalendar.Timezone.from_tzinfo(ZoneInfo(name))


def showtime_calendar(context: dict[str, Any]) -> bytes:
    """One VEVENT for the showtime: local time with its VTIMEZONE when the zone is known, else UTC."""
    zone = _zone(context.get("time_zone"))
    starts = datetime.fromisoformat(context["starts_at"]).astimezone(zone or UTC)
    calendar = icalendar.Calendar()
    calendar.add("prodid", CALENDAR_PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    if zone is not None:
        calendar.add_component(_vtimezone(context["time_zone"]))
    calendar.add_component(_showtime_event(context, starts))
    return bytes(calendar.to_ical())


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
