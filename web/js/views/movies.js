// The movie list: posters, a title search, a genre filter, a "showing on" date, pages.

import { api } from "../api.js";
import { h, poster, show, spinner, title } from "../ui.js";

const PAGE = 12;
let allGenres = null; // the genres of the catalogue, fetched once per page load

export async function renderMovies(root, { query, navigate }) {
  const filters = { q: query.get("q") || "", genre: query.get("genre") || "", date: query.get("date") || "" };
  const offset = Number(query.get("offset")) || 0;
  const message = h("div", { class: "messages" });
  const list = h("ul", { class: "movie-grid", "aria-live": "polite", "aria-busy": "true" });
  root.append(title("Now showing"), filterForm(filters, navigate), message, list);
  list.replaceChildren(h("li", {}, spinner()));
  try {
    const page = await api(`/api/movies/movies?${params({ ...filters, limit: PAGE, offset })}`);
    list.replaceChildren(...page.items.map(movieCard));
    if (!page.items.length) show(message, "info", "No movies match these filters.");
    root.append(pager(page, filters));
    fillGenres(root.querySelector("#genre"), await genres(page.items), filters.genre);
  } catch (error) {
    list.replaceChildren();
    show(message, "error", `Could not load the movies: ${error.message}`);
  }
  list.setAttribute("aria-busy", "false");
}

function params(values) {
  return new URLSearchParams(Object.entries(values).filter(([, v]) => v !== "" && v !== null));
}

function filterForm(filters, navigate) {
  const form = h("form", { class: "filters", role: "search" },
    field("q", "Search titles", h("input", { id: "q", name: "q", type: "search", value: filters.q, placeholder: "e.g. monsoon" })),
    field("genre", "Genre", h("select", { id: "genre", name: "genre" }, h("option", { value: "" }, "All genres"))),
    field("date", "Showing on", h("input", { id: "date", name: "date", type: "date", value: filters.date })),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const search = params(data).toString();
    navigate(search ? `/?${search}` : "/");
  });
  form.genre.addEventListener("change", () => form.requestSubmit());
  return form;
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

async function genres(shown) {
  allGenres ??= api("/api/movies/movies?limit=100").then((page) => page.items, () => null);
  const movies = (await allGenres) || shown;
  return new Set(movies.flatMap((m) => m.genres || []));
}

function fillGenres(select, genres, current) {
  if (current) genres.add(current);
  for (const genre of [...genres].sort()) {
    select.append(h("option", { value: genre, selected: genre === current }, genre[0].toUpperCase() + genre.slice(1)));
  }
}

function movieCard(movie) {
  const facts = [movie.duration_minutes && `${movie.duration_minutes} min`, movie.rating, movie.language].filter(Boolean);
  return h("li", { class: "movie-card" },
    h("a", { href: `/movies/${movie.id}`, class: "movie-link" },
      poster(movie),
      h("span", { class: "movie-title" }, movie.title)),
    h("p", { class: "muted" }, facts.join(" · ")),
    h("ul", { class: "tags", "aria-label": "Genres" }, (movie.genres || []).map((g) => h("li", {}, g))));
}

function pager(page, filters) {
  const link = (offset, text, rel) => h("a", { href: `/?${params({ ...filters, offset: offset || "" })}`, rel }, text);
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  if (page.offset > 0) nav.append(link(Math.max(0, page.offset - page.limit), "← Previous", "prev"));
  const last = Math.min(page.offset + page.items.length, page.total);
  nav.append(h("span", {}, page.total ? `${page.offset + 1}–${last} of ${page.total}` : ""));
  if (last < page.total) nav.append(link(page.offset + page.limit, "Next →", "next"));
  return nav;
}
