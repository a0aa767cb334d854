// One movie: its facts and its showtimes, picked by date and theater.

import { api } from "../api.js";
import { h, localDate, money, poster, rememberShowtime, show, spinner, timeOnly, title } from "../ui.js";

export async function renderMovie(root, { params: [movieId], query, navigate }) {
  const message = h("div", { class: "messages" });
  root.append(spinner());
  let movie;
  try {
    movie = await api(`/api/movies/movies/${movieId}`);
  } catch (error) {
    root.replaceChildren(title("Movie not found"), message, h("a", { href: "/" }, "Back to the movies"));
    show(message, "error", error.message);
    return;
  }
  const upcoming = movie.showtimes || [];
  const dates = [...new Set(upcoming.map((s) => localDate(new Date(s.starts_at), s.time_zone)))].sort();
  const theaters = new Map(upcoming.map((s) => [s.theater_id, `${s.theater_name}, ${s.city}`]));
  const chosen = { date: query.get("date") || dates[0] || "", theater: query.get("theater") || "" };
  if (chosen.date && !dates.includes(chosen.date)) dates.splice(0, dates.length, ...[...dates, chosen.date].sort());
  const slot = h("section", { class: "showtimes", "aria-labelledby": "showtimes-heading" });
  root.replaceChildren(header(movie), message,
    h("h2", { id: "showtimes-heading" }, "Showtimes"),
    pickers(dates, theaters, chosen, (next) => navigate(`/movies/${movieId}?${new URLSearchParams(next)}`, { replace: true })),
    slot);
  if (!dates.length) return show(message, "info", "No upcoming showtimes for this movie.");
  await loadShowtimes(slot, message, movieId, chosen);
}

function header(movie) {
  const facts = [movie.duration_minutes && `${movie.duration_minutes} min`, movie.rating, movie.language,
    (movie.genres || []).join(", ")].filter(Boolean);
  return h("div", { class: "movie-header" },
    poster(movie),
    h("div", {},
      title(movie.title),
      h("p", { class: "muted" }, facts.join(" · ")),
      movie.synopsis ? h("p", {}, movie.synopsis) : null,
      h("p", {}, h("a", { href: "/" }, "← All movies"))));
}

function pickers(dates, theaters, chosen, onChange) {
  const dateButtons = h("div", { class: "date-tabs", role: "group", "aria-label": "Date" },
    dates.map((date) => h("button", {
      type: "button", class: "chip", "aria-pressed": String(date === chosen.date), "data-date": date,
      onclick: () => onChange({ ...chosen, date }),
    }, dayLabel(date))));
  const select = h("select", { id: "theater" }, h("option", { value: "" }, "All theaters"),
    [...theaters].map(([id, name]) => h("option", { value: id, selected: id === chosen.theater }, name)));
  select.addEventListener("change", () => onChange({ ...chosen, theater: select.value }));
  return h("div", { class: "pickers" }, dateButtons,
    h("div", { class: "field" }, h("label", { for: "theater" }, "Theater"), select));
}

function dayLabel(isoDate) {
  const date = new Date(`${isoDate}T12:00:00Z`);
  return new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" }).format(date);
}

async function loadShowtimes(slot, message, movieId, chosen) {
  const search = new URLSearchParams({ movie_id: movieId, date: chosen.date, limit: 100 });
  if (chosen.theater) search.set("theater_id", chosen.theater);
  slot.replaceChildren(spinner());
  try {
    const page = await api(`/api/movies/showtimes?${search}`);
    const items = page.items.filter((s) => new Date(s.starts_at) > Date.now());
    slot.replaceChildren(...byTheater(items));
    if (!items.length) show(message, "info", "No showtimes on this date here. Try another date or theater.");
  } catch (error) {
    slot.replaceChildren();
    show(message, "error", `Could not load the showtimes: ${error.message}`);
  }
}

function byTheater(showtimes) {
  const groups = new Map();
  for (const s of showtimes) groups.set(s.theater_id, [...(groups.get(s.theater_id) || []), s]);
  return [...groups.values()].map((items) => h("div", { class: "theater" },
    h("h3", {}, `${items[0].theater_name}`, h("span", { class: "muted" }, ` · ${items[0].city}`)),
    h("ul", { class: "times" }, items.map((s) => h("li", {},
      h("a", { class: "time-link", href: `/showtimes/${s.id}`, onclick: () => rememberShowtime(s),
        "aria-label": `${timeOnly(s.starts_at, s.time_zone)}, ${s.auditorium_name}, from ${fromPrice(s)}` },
      h("strong", {}, timeOnly(s.starts_at, s.time_zone)),
      h("span", {}, s.auditorium_name),
      h("span", { class: "muted" }, `from ${fromPrice(s)}`)))))));
}

function fromPrice(showtime) {
  const prices = Object.values(showtime.prices || {}).filter((p) => p !== null);
  return prices.length ? money(Math.min(...prices), showtime.currency) : "—";
}
