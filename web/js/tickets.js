// A confirmed booking's tickets: one block per seat with its QR code, seat and status; printable.

import { api, apiFile } from "./api.js";
import { bookingReference, dateTime, h, showtimeZone, timeOnly } from "./ui.js";

const STATUS_TEXT = { valid: "Valid", admitted: "Admitted", void: "Void", expired: "Expired" };

/**
 * Blob URLs of the QR codes on show. The QR images need the user's token, so they are fetched
 * and shown from memory; their URLs are revoked when the list is redrawn or the page is left.
 */
export function qrImages() {
  let urls = [];
  let closed = false;
  return {
    async load(img, path) {
      const url = URL.createObjectURL(await apiFile(path, "image/svg+xml"));
      if (closed) return URL.revokeObjectURL(url);
      urls.push(url);
      img.src = url;
    },
    revokeAll() {
      urls.forEach((url) => URL.revokeObjectURL(url));
      urls = [];
    },
    close() {
      closed = true;
      this.revokeAll();
    },
  };
}

/** The tickets section of a confirmed booking; fills itself in once the tickets are loaded. */
export function ticketWallet(booking, images) {
  const list = h("ul", { class: "ticket-list" });
  const status = h("p", { class: "muted" }, "Loading your tickets…");
  const print = h("button", { type: "button", class: "print-button", onclick: () => printTickets(section) },
    "Print tickets");
  const section = h("section", { class: "tickets", "aria-label": `Tickets of booking ${bookingReference(booking)}` },
    h("h3", {}, "Tickets"), status, list, print);
  api(`/api/bookings/bookings/${booking.id}/tickets`)
    .then((tickets) => {
      status.remove();
      list.replaceChildren(...tickets.map((ticket) => ticketCard(booking, ticket, images)));
    })
    .catch((error) => (status.textContent = `Could not load the tickets: ${error.message}`));
  return section;
}

function ticketCard(booking, ticket, images) {
  const qr = h("img", { class: "qr", alt: `QR code of the ticket for seat ${ticket.seat}`, width: 160, height: 160 });
  images.load(qr, ticket.qr_url).catch(() => qr.replaceWith(h("p", { class: "qr qr-missing" }, "QR code unavailable")));
  return h("li", { class: "ticket-card", "data-status": ticket.status, "data-testid": "ticket" },
    qr,
    h("div", { class: "ticket-facts" },
      h("p", { class: "ticket-seat" }, `Seat ${ticket.seat}`),
      h("p", {}, booking.movie_title),
      h("p", {}, dateTime(booking.starts_at, showtimeZone(booking.showtime_id))),
      h("p", {}, `${booking.theater_name}, ${booking.auditorium_name}`),
      h("p", {}, h("span", { class: `badge ticket-${ticket.status}`, "data-testid": "ticket-status" }, statusText(ticket))),
      h("p", { class: "ticket-code" }, h("code", {}, ticket.code))));
}

function statusText(ticket) {
  const text = STATUS_TEXT[ticket.status] || ticket.status;
  return ticket.status === "admitted" && ticket.admitted_at ? `${text} at ${timeOnly(ticket.admitted_at)}` : text;
}

/** Print only this booking's tickets (the print stylesheet hides the rest of the page). */
function printTickets(section) {
  document.body.classList.add("printing-tickets");
  section.classList.add("print-these");
  window.addEventListener("afterprint", () => {
    document.body.classList.remove("printing-tickets");
    section.classList.remove("print-these");
  }, { once: true });
  window.print();
}
