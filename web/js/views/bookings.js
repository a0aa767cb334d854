// The user's bookings, newest first, with pay (pending) and cancel, and each confirmed booking's tickets.

import { api } from "../api.js";
import { qrImages, ticketWallet } from "../tickets.js";
import { bookingReference, dateTime, h, money, show, spinner, title, showtimeZone } from "../ui.js";

const PAGE = 20;
const CANCELLABLE = new Set(["pending", "confirmed"]);

export async function renderBookings(root, { query, navigate }) {
  const offset = Number(query.get("offset")) || 0;
  const message = h("div", { class: "messages" });
  const list = h("ul", { class: "booking-list" });
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  root.append(title("My bookings"), message, list, nav);
  list.replaceChildren(h("li", {}, spinner()));
  const images = qrImages();
  const load = async () => {
    const page = await api(`/api/bookings/bookings?limit=${PAGE}&offset=${offset}`);
    images.revokeAll();
    list.replaceChildren(...page.items.map((b) => bookingItem(b, message, load, images)));
    if (!page.items.length) show(message, "info", "No bookings yet.");
    nav.replaceChildren(...pagerLinks(page));
  };
  try {
    await load();
  } catch (error) {
    list.replaceChildren();
    if (error.status === 401) return navigate("/login?next=/bookings", { replace: true });
    show(message, "error", `Could not load your bookings: ${error.message}`);
  }
  return () => images.close();
}

function bookingItem(booking, message, reload, images) {
  const actions = h("div", { class: "actions" });
  if (booking.status === "pending") actions.append(h("a", { href: `/checkout/${booking.id}`, class: "button-link" }, "Pay now"));
  if (booking.status === "confirmed") actions.append(h("a", { href: `/bookings/${booking.id}` }, "Details"));
  if (CANCELLABLE.has(booking.status)) {
    actions.append(h("button", { type: "button", onclick: (e) => cancel(booking, e.currentTarget, message, reload),
      "aria-label": `Cancel booking ${bookingReference(booking)}` }, "Cancel"));
  }
  return h("li", { class: "booking", "data-status": booking.status },
    h("h2", {}, booking.movie_title),
    h("p", {}, h("span", { class: `badge status-${booking.status}` }, booking.status), " ",
      h("span", { class: "muted" }, `Ref ${bookingReference(booking)}`)),
    h("p", {}, `${dateTime(booking.starts_at, showtimeZone(booking.showtime_id))} · ${booking.theater_name}, ${booking.auditorium_name}`),
    h("p", {}, `Seats ${booking.seats.join(", ")} · ${money(booking.total_amount, booking.currency)}`),
    actions,
    booking.status === "confirmed" ? ticketWallet(booking, images) : null);
}

async function cancel(booking, button, message, reload) {
  const refund = booking.status === "confirmed" ? " The payment will be refunded." : "";
  if (!window.confirm(`Cancel booking ${bookingReference(booking)} (seats ${booking.seats.join(", ")})?${refund}`)) return;
  button.disabled = true;
  try {
    await api(`/api/bookings/bookings/${booking.id}/cancel`, { method: "POST" });
    show(message, "success", `Booking ${bookingReference(booking)} was cancelled.${refund}`);
    await reload().catch(() => {});
  } catch (error) {
    const why = error.code === "cancellation_closed" ? `${error.message}. Please ask the cinema.` : error.message;
    show(message, "error", `Could not cancel: ${why}`);
    button.disabled = false;
  }
}

function pagerLinks(page) {
  const links = [];
  if (page.offset > 0) links.push(h("a", { href: `/bookings?offset=${Math.max(0, page.offset - page.limit)}` }, "← Newer"));
  if (page.offset + page.items.length < page.total) links.push(h("a", { href: `/bookings?offset=${page.offset + page.limit}` }, "Older →"));
  return links;
}
