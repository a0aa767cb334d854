// Pay a held booking before its hold runs out (a visible countdown to expires_at).

import { api, newIdempotencyKey } from "../api.js";
import { dateTime, h, money, show, spinner, title, showtimeZone } from "../ui.js";

const TEST_CARDS = [["4242 4242 4242 4242", "succeeds"], ["4000 0000 0000 0002", "is declined"]];

export async function renderCheckout(root, { params: [bookingId], navigate }) {
  const message = h("div", { class: "messages" });
  root.append(title("Pay for your seats"), message, spinner());
  let booking;
  try {
    booking = await api(`/api/bookings/bookings/${bookingId}`);
  } catch (error) {
    root.lastChild.remove();
    if (error.status === 401) return navigate(`/login?next=/checkout/${bookingId}`, { replace: true });
    return show(message, "error", `Could not load the booking: ${error.message}`);
  }
  if (booking.status !== "pending") return navigate(`/bookings/${bookingId}`, { replace: true });
  const countdown = h("p", { class: "countdown", role: "timer", "data-testid": "countdown" });
  const spoken = h("p", { class: "sr-only", "aria-live": "polite" });
  const form = paymentForm(booking, message, navigate);
  root.lastChild.replaceWith(summary(booking), countdown, spoken, form);
  return startCountdown(booking, { countdown, spoken }, () => expired(form, message, booking));
}

function summary(booking) {
  return h("dl", { class: "facts" },
    h("dt", {}, "Movie"), h("dd", {}, booking.movie_title),
    h("dt", {}, "Where"), h("dd", {}, `${booking.theater_name}, ${booking.auditorium_name}`),
    h("dt", {}, "When"), h("dd", {}, dateTime(booking.starts_at, showtimeZone(booking.showtime_id))),
    h("dt", {}, "Seats"), h("dd", { "data-testid": "seats" }, booking.seats.join(", ")),
    h("dt", {}, "Total"), h("dd", { "data-testid": "total" }, money(booking.total_amount, booking.currency)));
}

function startCountdown(booking, { countdown, spoken }, onExpired) {
  const deadline = new Date(booking.expires_at).getTime();
  let announcedMinute = null;
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    countdown.replaceChildren("Seats held for ", h("strong", {}, text));
    countdown.classList.toggle("urgent", left <= 60);
    const minute = Math.ceil(left / 60);
    // Screen readers hear the time left once a minute, not every second.
    if (minute !== announcedMinute && left > 0) spoken.textContent = `${minute} minute${minute > 1 ? "s" : ""} left to pay`;
    announcedMinute = minute;
    if (left === 0) (clearInterval(timer), onExpired());
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}

function expired(form, message, booking) {
  if (form.dataset.closed) return;
  show(message, "error", "Your hold has expired and the seats were released. Please choose your seats again.");
  closeCheckout(form, message, booking);
}

function paymentForm(booking, message, navigate) {
  const card = h("input", { id: "card", name: "card", inputmode: "numeric", autocomplete: "cc-number", required: true,
    pattern: "[0-9 \\-]{12,23}", "aria-describedby": "card-hint" });
  const method = h("select", { id: "method", name: "method" },
    h("option", { value: "credit_card" }, "Credit card"), h("option", { value: "debit_card" }, "Debit card"));
  const button = h("button", { type: "submit", class: "primary" }, `Pay ${money(booking.total_amount, booking.currency)}`);
  const form = h("form", { class: "stack narrow", "aria-label": "Payment" },
    h("div", { class: "field" }, h("label", { for: "method" }, "Payment method"), method),
    h("div", { class: "field" }, h("label", { for: "card" }, "Card number"), card,
      h("p", { id: "card-hint", class: "hint" }, "Test cards: ", TEST_CARDS.map(([n, what], i) => [i ? "; " : "", h("code", {}, n), ` ${what}`]))),
    button);
  let attempt = null; // {key, body}: reused only when the last try's outcome is unknown
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { booking_id: booking.id, payment_method: method.value, card_number: card.value.replace(/[\s-]/g, "") };
    if (!attempt || JSON.stringify(attempt.body) !== JSON.stringify(body)) attempt = { key: newIdempotencyKey(), body };
    button.disabled = true;
    show(message, "info", "Processing your payment…");
    try {
      await api("/api/payments/process", { method: "POST", json: body, headers: { "Idempotency-Key": attempt.key } });
      navigate(`/bookings/${booking.id}`, { replace: true });
    } catch (error) {
      if (error.code === "booking_already_paid") return navigate(`/bookings/${booking.id}`, { replace: true });
      if (!unknownOutcome(error)) attempt = null;
      show(message, "error", paymentError(error));
      if (stillPayable(error)) {
        card.value = "";
        card.focus();
      } else if (error.status === 402 || (error.status === 409 && !unknownOutcome(error))) {
        return closeCheckout(form, message, booking);
      }
      button.disabled = false;
    }
  });
  return form;
}

/** A declined card leaves the seats held until the booking's last allowed attempt. */
const attemptsLeft = (error) => Number(error.details?.attempts_left ?? 0);
const stillPayable = (error) => error.status === 402 && attemptsLeft(error) > 0;

/** The last declined card (or a booking that cannot be paid) frees the seats: offer to pick seats again. */
function closeCheckout(form, message, booking) {
  form.dataset.closed = "true";
  for (const control of form.elements) control.disabled = true;
  message.append(h("p", {}, h("a", { href: `/showtimes/${booking.showtime_id}` }, "Choose seats again")));
}

/** Network errors, 5xx and "still in flight" may have charged: retry with the same key. */
const unknownOutcome = (error) => error.status === 0 || error.status >= 500 || error.code === "idempotency_busy";

const firstProblem = (error) =>
  String((Array.isArray(error.details) && error.details[0]?.msg) || error.message).replace(/^Value error, /, "");

function paymentError(error) {
  if (error.status === 401) return "Your session has ended. Please log in again, then pay from My bookings.";
  if (stillPayable(error)) {
    const left = attemptsLeft(error);
    return `Payment declined: ${error.message}. Your seats are still held: try another card (${left} attempt${left === 1 ? "" : "s"} left).`;
  }
  if (error.status === 402) return `Payment declined: ${error.message}. That was the last attempt for this booking, so the seats were released; choose them again to book.`;
  if (error.code === "booking_expired") return "Your hold has expired and the seats were released. Please choose your seats again.";
  if (error.status === 409 && !unknownOutcome(error)) return `This booking can no longer be paid: ${error.message}`;
  if (error.status === 422) return `Please check the card number: ${firstProblem(error)}.`;
  if (unknownOutcome(error)) return `${error.message}. Press Pay again to retry: you will never be charged twice.`;
  return error.message;
}
