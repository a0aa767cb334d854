"""booking-service HTTP API (thin: parse, authorize, call the service, shape the answer)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from booking_service import repository, service, tickets
from booking_service.schemas import (
    BookingOut,
    BookingPage,
    BookingStatus,
    BookRequest,
    CheckinOut,
    CheckinRequest,
    InternalBookingOut,
    SeatStatusOut,
    TicketOut,
)
from booking_service.service import BOOKING, BookingContext
from servicekit.db import SessionDep
from servicekit.errors import error_responses
from servicekit.security import CurrentUser, InternalCaller, StaffUser

router = APIRouter(tags=["bookings"])
internal_router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[InternalCaller])


ContextDep = Annotated[BookingContext, Depends(BOOKING)]


@router.post(
    "/book",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingOut,
    responses=error_responses(401, 404, 409, 422, 503),
)
async def book(body: BookRequest, user: CurrentUser, ctx: ContextDep) -> BookingOut:
    """Hold seats of a showtime (all or none) as a pending booking, to be paid before `expires_at`.

    422 for unknown, duplicated (case-insensitively: `a1` is `A1`) or too many seats; 409 when
    seats are taken (`details` names them) or the booking cannot be made now (`code` says why).
    """
    booking = await service.book_seats(ctx, user, body)
    return BookingOut.model_validate(booking)


@router.get("/bookings", response_model=BookingPage, responses=error_responses(401, 422))
async def list_bookings(
    user: CurrentUser,
    session: SessionDep,
    status: BookingStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> BookingPage:
    """The caller's bookings, newest first, optionally filtered by status."""
    items, total = await repository.list_user_bookings(session, user.user_id, status, limit, offset)
    return BookingPage(
        items=[BookingOut.model_validate(b) for b in items], total=total, limit=limit, offset=offset
    )


@router.get("/bookings/{booking_id}", response_model=BookingOut, responses=error_responses(401, 404, 422))
async def get_booking(booking_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> BookingOut:
    """One of the caller's bookings."""
    return BookingOut.model_validate(await service.get_own_booking(session, user, booking_id))


@router.post(
    "/bookings/{booking_id}/cancel",
    response_model=BookingOut,
    responses=error_responses(401, 404, 409, 422),
)
async def cancel_booking(
    booking_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: ContextDep
) -> BookingOut:
    """Cancel a booking: a pending one frees its seats at once, a confirmed one is refunded.

    A confirmed booking can be cancelled until `CANCELLATION_CUTOFF_MINUTES` (30) before the
    showtime starts: 409 `cancellation_closed` after that. Cancelling a cancelled booking
    answers it unchanged; an expired or failed one is 409 `booking_not_cancellable`.
    """
    booking = await service.cancel_own_booking(session, ctx, user, booking_id)
    return BookingOut.model_validate(booking)


@router.get(
    "/bookings/{booking_id}/tickets", response_model=list[TicketOut], responses=error_responses(401, 404, 422)
)
async def list_tickets(booking_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> list[TicketOut]:
    """The tickets of one of the caller's bookings, one per seat (none until it is confirmed)."""
    booking = await service.get_own_booking(session, user, booking_id)
    return await tickets.tickets_of(session, booking)


# The QR of a code never changes: the browser may keep it (private: it is the ticket).
QR_CACHE_CONTROL = "private, max-age=86400"


@router.get(
    "/tickets/{code}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **error_responses(401, 404, 422)},
)
async def ticket_qr_code(
    code: Annotated[str, Path(max_length=128)], user: CurrentUser, session: SessionDep
) -> Response:
    """The ticket's code as an SVG QR code, for the ticket's owner and for staff (404 otherwise)."""
    svg = await tickets.qr_code_svg(session, user, code)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": QR_CACHE_CONTROL})


@router.post("/checkin", response_model=CheckinOut, responses=error_responses(401, 403, 404, 409, 422))
async def check_in(
    body: CheckinRequest, staff: StaffUser, session: SessionDep, ctx: ContextDep
) -> CheckinOut:
    """Admit a scanned ticket at the door (staff and admins): once, from when the doors open.

    409 with the reason in `code`: `already_admitted` (`details.admitted_at` says when),
    `ticket_void`, `ticket_expired`, `too_early`, `wrong_theater` (a scanner naming its
    `theater_id`); 404 for a code that is no ticket.
    """
    doors = timedelta(minutes=ctx.settings.doors_open_minutes_before_start)
    return await tickets.check_in(session, staff, body, doors)


@internal_router.get(
    "/showtimes/{showtime_id}/seat-status", response_model=SeatStatusOut, responses=error_responses(404, 422)
)
async def seat_status(showtime_id: uuid.UUID, session: SessionDep, ctx: ContextDep) -> SeatStatusOut:
    """Seats of a showtime that are not available (for movie-service's seat map)."""
    return await service.seat_status(session, ctx.holds, showtime_id)


@internal_router.get(
    "/bookings/{booking_id}", response_model=InternalBookingOut, responses=error_responses(404, 422)
)
async def internal_booking(booking_id: uuid.UUID, session: SessionDep, ctx: ContextDep) -> InternalBookingOut:
    """A booking's amount, owner, status, cancellation cut-off and admission (for payment-service)."""
    return await service.internal_view(session, ctx.settings, booking_id)
