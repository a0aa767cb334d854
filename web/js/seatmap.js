// The auditorium drawn as rows of seat buttons (screen at the top, aisles as gaps),
// moved through with the arrow keys (one tab stop: a roving tabindex).

import { h, money } from "./ui.js";

const STATUS_TEXT = { available: "available", held: "on hold", booked: "sold", selected: "selected" };
export const TIER_TEXT = { standard: "Standard", vip: "VIP", couple: "Couple" };

/**
 * Build the seat grid once per layout; call update(map, selected) on each refresh.
 * onToggle(seatId) is called when an available or selected seat is activated.
 */
export function createSeatMap(map, onToggle) {
  const bySeat = new Map(map.seats.map((s) => [`${s.row}:${s.number}`, s]));
  const buttons = new Map();
  const rows = map.layout.rows.map((row) => seatRow(row, bySeat, buttons, map.currency, onToggle));
  const grid = h("div", { class: "seat-rows", role: "group", "aria-label": "Seats", "aria-describedby": "seat-help" }, rows);
  grid.addEventListener("keydown", (event) => moveFocus(event, grid));
  grid.addEventListener("focusin", (event) => rove(grid, event.target.closest(".seat")));
  const first = grid.querySelector(".seat");
  if (first) first.tabIndex = 0;
  const scroller = h("div", { class: "seat-scroll" }, grid);
  const swipe = h("p", { class: "hint swipe-hint", hidden: true }, "The hall is wider than the screen: scroll sideways to see every seat.");
  const element = h("div", { class: "seat-map", style: fitting(map.layout.rows) },
    h("div", { class: "screen", "aria-hidden": "true" }, "Screen"),
    h("p", { id: "seat-help", class: "sr-only" }, "The screen is at the top. Use the arrow keys to move between seats, and Space or Enter to select or release a seat."),
    scroller, swipe);
  new ResizeObserver(() => (swipe.hidden = scroller.scrollWidth <= scroller.clientWidth + 1)).observe(scroller);
  return { element, update: (next, selected) => updateSeats(buttons, next, selected) };
}

/** CSS variables so the widest row fits the screen: seat widths (a couple seat is 1.7) and gaps. */
function fitting(rows) {
  const width = (row) => row.seats * (row.tier === "couple" ? 1.7 : 1) + row.aisles_after.length * 0.6;
  const cols = Math.max(...rows.map(width));
  const gaps = Math.max(...rows.map((row) => row.seats + row.aisles_after.length + 1));
  return `--cols: ${cols.toFixed(1)}; --gaps: ${gaps}`;
}

function seatRow(row, bySeat, buttons, currency, onToggle) {
  const cells = [h("span", { class: "row-label", "aria-hidden": "true" }, row.label)];
  for (let number = 1; number <= row.seats; number++) {
    const seat = bySeat.get(`${row.label}:${number}`);
    if (seat) cells.push(seatButton(seat, buttons, currency, onToggle));
    if (row.aisles_after.includes(number)) cells.push(h("span", { class: "aisle", "aria-hidden": "true" }));
  }
  cells.push(h("span", { class: "row-label", "aria-hidden": "true" }, row.label));
  return h("div", { class: `seat-row tier-${row.tier}`, role: "group", "aria-label": `Row ${row.label}, ${TIER_TEXT[row.tier] || row.tier}` }, cells);
}

function seatButton(seat, buttons, currency, onToggle) {
  const button = h("button", {
    type: "button", class: `seat tier-${seat.tier}`, tabindex: "-1", "data-seat": seat.seat_id,
    "data-label": `Seat ${seat.seat_id}, ${TIER_TEXT[seat.tier] || seat.tier}, ${money(seat.price, currency)}`,
    onclick: () => button.getAttribute("aria-disabled") !== "true" && onToggle(seat.seat_id),
  }, String(seat.number));
  buttons.set(seat.seat_id, button);
  return button;
}

function updateSeats(buttons, map, selected) {
  for (const seat of map.seats) {
    const button = buttons.get(seat.seat_id);
    if (!button) continue;
    const state = selected.has(seat.seat_id) ? "selected" : seat.status;
    button.dataset.status = state;
    button.setAttribute("aria-pressed", String(state === "selected"));
    button.setAttribute("aria-disabled", String(state === "held" || state === "booked"));
    button.setAttribute("aria-label", `${button.dataset.label}, ${STATUS_TEXT[state] || state}`);
  }
}

const KEYS = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0], Home: [0, -Infinity], End: [0, Infinity] };

function moveFocus(event, grid) {
  const move = KEYS[event.key];
  const current = event.target.closest(".seat");
  if (!move || !current) return;
  event.preventDefault();
  const rows = [...grid.querySelectorAll(".seat-row")].map((r) => [...r.querySelectorAll(".seat")]).filter((r) => r.length);
  const rowIndex = rows.findIndex((r) => r.includes(current));
  const next = move[0] ? nearestInRow(rows[rowIndex + move[0]], current) : sideways(rows[rowIndex], current, move[1]);
  if (next) next.focus();
}

function rove(grid, seat) {
  if (!seat) return;
  for (const other of grid.querySelectorAll(".seat[tabindex='0']")) other.tabIndex = -1;
  seat.tabIndex = 0;
}

function sideways(row, current, step) {
  if (step === -Infinity) return row[0];
  if (step === Infinity) return row[row.length - 1];
  return row[row.indexOf(current) + step];
}

/** The seat of another row standing closest to the current one (rows differ in length). */
function nearestInRow(row, current) {
  if (!row) return null;
  const x = centre(current);
  return row.reduce((best, seat) => (Math.abs(centre(seat) - x) < Math.abs(centre(best) - x) ? seat : best));
}

const centre = (el) => {
  const box = el.getBoundingClientRect();
  return box.left + box.width / 2;
};
