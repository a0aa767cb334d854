// A showtime's seat map, refreshed every ~2 s while open; choose seats, then hold them.

import { api, isLoggedIn } from "../api.js";
import { createSeatMap, TIER_TEXT } from "../seatmap.js";
import { dateTime, h, money, rememberedShowtime, show, spinner, title } from "../ui.js";

const POLL_MS = 2000;
const selectionKey = (showtimeId) => `mb.selection.${showtimeId}`;

export async function renderSeats(root, { params: [showtimeId], navigate }) {
  const message = h("div", { class: "messages" });
  root.append(title("Choose your seats"), message, spinner());
  let map;
  try {
    map = await api(`/api/movies/showtimes/${showtimeId}/seats`);
  } catch (error) {
    root.lastChild.remove();
    show(message, "error", `Could not load the seat map: ${error.message}`);
    return;
  }
  const state = { map, selected: restoreSelection(showtimeId, map), showtimeId, message, navigate };
  const seatMap = createSeatMap(map, (seatId) => toggle(state, seatId));
  state.redraw = () => redraw(state, seatMap);
  state.parts = summary(state);
  root.lastChild.replaceWith(context(map), legend(map), seatMap.element, state.summary);
  state.redraw();
  const timer = setInterval(() => refresh(state), POLL_MS);
  return () => clearInterval(timer);
}

function context(map) {
  const showtime = rememberedShowtime(map.showtime_id);
  const where = showtime ? `${showtime.movie_title} · ${showtime.theater_name}, ${map.auditorium_name}` : map.auditorium_name;
  return h("p", { class: "context" }, h("strong", {}, where), ` · ${dateTime(map.starts_at, showtime?.time_zone)} · `,
    h("span", { "data-testid": "counts" }, `${map.available} seats free`));
}

function legend(map) {
  const prices = new Map();
  for (const seat of map.seats) prices.set(seat.tier, Math.min(seat.price, prices.get(seat.tier) ?? Infinity));
  const states = [["available", "Available"], ["selected", "Your choice"], ["held", "On hold"], ["booked", "Sold"]];
  return h("div", { class: "legend" },
    h("ul", { class: "legend-states", "aria-label": "Seat states" },
      states.map(([status, text]) => h("li", {}, h("span", { class: "seat seat-sample", "data-status": status, "aria-hidden": "true" }), text))),
    h("ul", { class: "legend-tiers", "aria-label": "Tiers and prices" },
      [...prices].map(([tier, price]) => h("li", {},
        h("span", { class: `seat seat-sample tier-${tier}`, "data-status": "available", "aria-hidden": "true" }),
        `${TIER_TEXT[tier] || tier} ${money(price, map.currency)}`))));
}

function toggle(state, seatId) {
  if (state.selected.has(seatId)) state.selected.delete(seatId);
  else state.selected.add(seatId);
  saveSelection(state);
  state.redraw();
}

async function refresh(state) {
  if (state.busy || document.hidden) return;
  state.busy = true;
  try {
    state.map = await api(`/api/movies/showtimes/${state.showtimeId}/seats`);
    dropTaken(state, state.map.seats.filter((s) => s.status !== "available").map((s) => s.seat_id));
    state.redraw();
  } catch {
    // A missed refresh is retried on the next tick; the hold request is the authority anyway.
  } finally {
    state.busy = false;
  }
}

function dropTaken(state, unavailable) {
  const lost = unavailable.filter((id) => state.selected.has(id));
  if (!lost.length) return;
  lost.forEach((id) => state.selected.delete(id));
  saveSelection(state);
  show(state.message, "error", `Sorry, ${seatList(lost)} ${lost.length > 1 ? "were" : "was"} just taken by someone else. Please choose other seats.`);
}

function summary(state) {
  const text = h("p", { "data-testid": "selection", "aria-live": "polite" });
  const action = h("button", { type: "button", class: "primary", onclick: () => hold(state, action) }, "Hold seats");
  state.summary = h("div", { class: "summary" }, text, action);
  return { text, action };
}

function redraw(state, seatMap) {
  seatMap.update(state.map, state.selected);
  const counts = document.querySelector("[data-testid=counts]");
  if (counts) counts.textContent = `${state.map.available} seats free`;
  const chosen = state.map.seats.filter((s) => state.selected.has(s.seat_id));
  const total = chosen.reduce((sum, s) => sum + s.price, 0);
  const { text, action } = state.parts;
  const line = chosen.length
    ? `Selected: ${chosen.map((s) => s.seat_id).join(", ")} · Total ${money(total, state.map.currency)}`
    : "No seats selected yet. Pick seats on the map.";
  if (text.textContent !== line) text.textContent = line;
  if (state.holding) return;
  action.disabled = !chosen.length;
  action.textContent = chosen.length ? `Hold ${chosen.length} seat${chosen.length > 1 ? "s" : ""}` : "Hold seats";
}

async function hold(state, button) {
  if (!isLoggedIn()) {
    state.navigate(`/login?next=${encodeURIComponent(`/showtimes/${state.showtimeId}`)}`);
    return;
  }
  state.holding = true;
  button.disabled = true;
  button.textContent = "Holding…";
  try {
    const seatIds = [...state.selected];
    const booking = await api("/api/bookings/book", { method: "POST", json: { showtime_id: state.showtimeId, seat_ids: seatIds } });
    sessionStorage.removeItem(selectionKey(state.showtimeId));
    state.navigate(`/checkout/${booking.id}`);
  } catch (error) {
    holdFailed(state, error);
  }
}

function holdFailed(state, error) {
  state.holding = false;
  if (error.status === 401) return state.navigate(`/login?next=${encodeURIComponent(`/showtimes/${state.showtimeId}`)}`);
  if (error.code === "seats_unavailable" && Array.isArray(error.details)) {
    const taken = error.details;
    taken.forEach((id) => state.selected.delete(id));
    for (const seat of state.map.seats) if (taken.includes(seat.seat_id)) seat.status = "held";
    saveSelection(state);
    show(state.message, "error", `Sorry, ${seatList(taken)} ${taken.length > 1 ? "were" : "was"} just taken by someone else. Please choose other seats.`);
  } else {
    show(state.message, "error", `Could not hold the seats: ${error.message}`);
  }
  state.redraw();
  refresh(state);
}

const seatList = (ids) => (ids.length > 1 ? `seats ${ids.slice(0, -1).join(", ")} and ${ids.at(-1)}` : `seat ${ids[0]}`);

function restoreSelection(showtimeId, map) {
  const saved = JSON.parse(sessionStorage.getItem(selectionKey(showtimeId)) || "[]");
  const free = new Set(map.seats.filter((s) => s.status === "available").map((s) => s.seat_id));
  return new Set(saved.filter((id) => free.has(id)));
}

function saveSelection(state) {
  sessionStorage.setItem(selectionKey(state.showtimeId), JSON.stringify([...state.selected]));
}
