// Small DOM and formatting helpers shared by the views.

/** Build an element: h("button", {class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const fractionDigits = (currency) =>
  new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;

/** Integer minor units -> "₫90,000" / "$12.00". */
export function money(amount, currency) {
  const digits = fractionDigits(currency);
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount / 10 ** digits);
}

export function dateTime(iso, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone,
  }).format(new Date(iso));
}

export function timeOnly(iso, timeZone) {
  return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(iso));
}

/** YYYY-MM-DD of an instant in a time zone (en-CA formats dates that way). */
export function localDate(date, timeZone) {
  return new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone }).format(date);
}

/** Keep a showtime's names and time zone (the seat map and bookings carry neither). */
export function rememberShowtime(showtime) {
  sessionStorage.setItem(`mb.showtime.${showtime.id}`, JSON.stringify(showtime));
}

/** The showtime remembered from the movie page, or null after a direct visit. */
export function rememberedShowtime(showtimeId) {
  try {
    return JSON.parse(sessionStorage.getItem(`mb.showtime.${showtimeId}`));
  } catch {
    return null;
  }
}

/** Theater-local time when known (the time printed on the ticket), else the browser's. */
export const showtimeZone = (showtimeId) => rememberedShowtime(showtimeId)?.time_zone;

/** A short, readable booking reference from the booking id. */
export const bookingReference = (booking) => booking.reference || booking.id.slice(0, 8).toUpperCase();

/** A message box: kind "error" is an alert (announced at once), others are polite status. */
export function notice(kind, text) {
  const role = kind === "error" ? "alert" : "status";
  return h("div", { class: `notice notice-${kind}`, role }, text);
}

/** Put a message into a view's message slot (replacing the previous one). */
export function show(slot, kind, text) {
  slot.replaceChildren(text ? notice(kind, text) : "");
}

/** A poster image, or a drawn placeholder when the movie has none (or it fails to load). */
export function poster(movie) {
  const placeholder = () =>
    h("div", { class: "poster poster-placeholder", "aria-hidden": "true", style: `--hue: ${hue(movie.title)}` },
      h("span", { class: "poster-initials" }, initials(movie.title)),
      h("span", { class: "poster-title" }, movie.title));
  if (!movie.poster_url) return placeholder();
  const img = h("img", { class: "poster", src: movie.poster_url, alt: "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
  return img;
}

/** A stable colour per title, so placeholders differ from one another. */
const hue = (text) => [...text].reduce((sum, ch) => (sum * 31 + ch.codePointAt(0)) % 360, 7);

function initials(title) {
  const words = title.split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w));
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
}

export const title = (text) => h("h1", { tabindex: "-1" }, text);

export const spinner = (text = "Loading…") => h("p", { class: "loading", role: "status" }, text);
