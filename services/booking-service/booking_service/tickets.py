"""Tickets: one per seat when a booking is confirmed, shown as a QR code, admitted once at the door.

    valid ──check-in (doors open, showtime not over, at its theater)──> admitted
      └──the booking ends (cancelled, refunded)──> void

``expired`` is never stored: a valid ticket reads expired once its showtime is over
(computed on read, and the check-in's guard refuses it in the same terms), so nothing
has to sweep tickets when a showtime ends. The code is 128 random bits from ``secrets``,
looked up in ``tickets`` (SYSTEM_DESIGN 11): voiding a ticket needs that row anyway.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import segno
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from booking_service import events, repository
from booking_service.events import Admission, IssuedTicket
from booking_service.metrics import TICKET_CHECKINS
from booking_service.models import Booking
from booking_service.schemas import CheckinOut, CheckinRequest, TicketOut
from servicekit.errors import AppError, Conflict, NotFound
from servicekit.security import Principal

CODE_BYTES = 16  # 128 bits
QR_PATH = "/api/bookings/tickets/{code}/qr.svg"  # through the gateway


def new_ticket_code() -> str:
    """22 URL-safe characters: small enough for a version-2 QR code, too many to guess."""
    return secrets.token_urlsafe(CODE_BYTES)


async def issue_tickets(session: AsyncSession, booking: Booking) -> list[IssuedTicket]:
    """One valid ticket per seat of a booking being confirmed, in the confirm's transaction."""
    codes = [new_ticket_code() for _ in booking.seats]
    await repository.insert_tickets(session, booking, codes)
    return [IssuedTicket(code, seat) for code, seat in zip(codes, booking.seats, strict=True)]


async def tickets_of(session: AsyncSession, booking: Booking) -> list[TicketOut]:
    """A booking's tickets, in the order of its seats (none before it is confirmed)."""
    rows = await repository.tickets_of(session, booking.id)
    return [
        TicketOut(
            code=row.code,
            seat=row.seat_id,
            status=row.status,
            admitted_at=row.admitted_at,
            qr_url=QR_PATH.format(code=row.code),
        )
        for row in rows
    ]


async def qr_code_svg(session: AsyncSession, caller: Principal, code: str) -> bytes:
    """The ticket's code as an SVG QR code, for its owner or staff; 404 for anyone else."""
    holder = await repository.ticket_holder(session, code)
    if holder is None or (holder != caller.user_id and not caller.is_staff):
        raise NotFound("Ticket not found", code="ticket_not_found")
    # segno is pure Python: a few milliseconds of CPU, off the event loop.
    return await asyncio.to_thread(render_qr_svg, code)


def render_qr_svg(code: str) -> bytes:
    out = io.BytesIO()
    segno.make(code, error="m", micro=False).save(out, kind="svg", scale=8, border=4, xmldecl=False)
    return out.getvalue()


async def check_in(
    session: AsyncSession, staff: Principal, scan: CheckinRequest, doors: timedelta
) -> CheckinOut:
    """Admit a ticket once: 409 with the reason otherwise (404 for an unknown code).

    One guarded update decides (of two scanners at the same moment exactly one admits); only
    when it admits nothing is the ticket read, in the same transaction, to say why.
    """
    admitted = await repository.admit_ticket(session, scan.code, staff.user_id, doors, scan.theater_id)
    if admitted is None:
        refusal = await _refusal(session, scan, doors)
        TICKET_CHECKINS.labels(refusal.code if refusal.status == 409 else "unknown").inc()
        raise refusal
    await events.publish_ticket_admitted(session, _admission(admitted, staff.user_id))
    TICKET_CHECKINS.labels("admitted").inc()
    return CheckinOut(
        seat=admitted.seat_id,
        movie_title=admitted.movie_title,
        starts_at=admitted.starts_at,
        auditorium=admitted.auditorium_name,
        theater_name=admitted.theater_name,
        admitted_at=admitted.admitted_at,
    )


def _admission(row: Row[Any], staff_id: uuid.UUID) -> Admission:
    return Admission(
        row.booking_id, row.user_id, row.user_email, row.showtime_id, row.seat_id,
        row.theater_id, row.admitted_at, staff_id,
    )  # fmt: skip


async def _refusal(session: AsyncSession, scan: CheckinRequest, doors: timedelta) -> AppError:
    ticket = await repository.ticket_at_door(session, scan.code, doors, scan.theater_id)
    if ticket is None:
        return NotFound("Unknown ticket", code="ticket_not_found")
    opens_at = ticket.starts_at - doors
    details = {
        "seat": ticket.seat_id,
        "movie_title": ticket.movie_title,
        "theater_name": ticket.theater_name,
        "starts_at": ticket.starts_at.isoformat(),
        "doors_open_at": opens_at.isoformat(),
        "admitted_at": ticket.admitted_at.isoformat() if ticket.admitted_at else None,
    }
    code, message = _reason(ticket, opens_at)
    return Conflict(message, code=code, details=details)


def _reason(ticket: Row[Any], opens_at: datetime) -> tuple[str, str]:
    """Why the guarded update admitted nothing (its conditions, in the same clock)."""
    if ticket.status == "admitted":
        return "already_admitted", f"Already admitted at {_local(ticket.admitted_at, ticket.time_zone)}"
    if ticket.status == "void":
        return "ticket_void", "This ticket is void: its booking was cancelled"
    if not ticket.at_theater:
        return "wrong_theater", f"This ticket is for {ticket.theater_name}"
    if ticket.over:
        return "ticket_expired", "This ticket has expired: the showtime is over"
    # Valid, here, not over: the doors were the one condition left.
    return "too_early", f"Too early: doors open at {_local(opens_at, ticket.time_zone)}"


def _local(moment: datetime, time_zone: str | None) -> str:
    """HH:MM in the theater's zone (UTC for a booking that does not know it)."""
    zone = ZoneInfo(time_zone) if time_zone else None
    return moment.astimezone(zone).strftime("%H:%M") if zone else moment.strftime("%H:%M UTC")
