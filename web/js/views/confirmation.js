// One booking: waits (polling) until a paid booking is confirmed, then shows the reference.

import { api } from "../api.js";
import { bookingReference, dateTime, h, money, show, spinner, title, showtimeZone } from "../ui.js";

const POLL_MS = 1000;
const GIVE_UP_MS = 60000;
const FINAL = new Set(["confirmed", "cancelled", "expired", "failed"]);

export async function renderConfirmation(root, { params: [bookingId], navigate }) {
  const heading = title("Confirming your booking…");
  const message = h("div", { class: "messages" });
  const body = h("div", {}, spinner("Waiting for the payment to be confirmed…"));
  root.append(heading, message, body);
  const started = Date.now();
  let timer = null;
  let stopped = false;
  const poll = async () => {
    try {
      const booking = await api(`/api/bookings/bookings/${bookingId}`);
      if (stopped) return;
      if (FINAL.has(booking.status) || booking.status === "pending" && Date.now() - started > GIVE_UP_MS) {
        return finish(root, heading, message, body, booking);
      }
    } catch (error) {
      if (error.status === 401) return navigate(`/login?next=/bookings/${bookingId}`, { replace: true });
      if (error.status === 404) return show(message, "error", "No such booking.");
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };
  await poll();
  return () => ((stopped = true), clearTimeout(timer));
}

function finish(root, heading, message, body, booking) {
  heading.textContent = HEADINGS[booking.status] || "Your booking";
  body.replaceChildren(details(booking), h("p", {}, h("a", { href: "/bookings" }, "See all my bookings"), " · ", h("a", { href: "/" }, "Book another movie")));
  if (booking.status === "confirmed") show(message, "success", "Payment received. Your tickets are confirmed, and a confirmation email is on its way.");
  else if (booking.status === "pending") show(message, "info", "Still waiting for the payment to be confirmed. This page can be reloaded later.");
  else show(message, "error", statusExplanation(booking));
  heading.focus();
}

const HEADINGS = {
  confirmed: "You're booked!",
  pending: "Payment pending",
  cancelled: "Booking cancelled",
  expired: "Hold expired",
  failed: "Payment failed",
};

const CANCEL_REASONS = {
  user_cancelled: "You cancelled this booking. Any payment for it is refunded.",
  refund_requested: "This booking was cancelled because its payment was refunded at your request.",
  refunded_by_admin: "The cinema refunded your payment and cancelled this booking.",
  payment_after_expiry: "The payment arrived after the hold expired; it is being refunded.",
};

function statusExplanation(booking) {
  if (booking.status === "expired") return "The hold expired before the payment arrived; the seats were released.";
  if (booking.status === "failed") return "The card was declined too many times, so the seats were released.";
  return CANCEL_REASONS[booking.cancel_reason] || "This booking was cancelled.";
}

function details(booking) {
  return h("dl", { class: "facts ticket" },
    h("dt", {}, "Booking reference"), h("dd", { class: "reference", "data-testid": "reference" }, bookingReference(booking)),
    h("dt", {}, "Status"), h("dd", { "data-testid": "status" }, booking.status),
    h("dt", {}, "Movie"), h("dd", {}, booking.movie_title),
    h("dt", {}, "Where"), h("dd", {}, `${booking.theater_name}, ${booking.auditorium_name}`),
    h("dt", {}, "When"), h("dd", {}, dateTime(booking.starts_at, showtimeZone(booking.showtime_id))),
    h("dt", {}, "Seats"), h("dd", { "data-testid": "seats" }, booking.seats.join(", ")),
    h("dt", {}, "Total"), h("dd", {}, money(booking.total_amount, booking.currency)));
}
