// The app shell: a tiny history router, the header's account links, focus on each new page.

import { api, isLoggedIn, logOut } from "./api.js";
import { h } from "./ui.js";
import { renderMovies } from "./views/movies.js";
import { renderMovie } from "./views/movie.js";
import { renderSeats } from "./views/seats.js";
import { renderLogin, renderSignup } from "./views/auth.js";
import { renderCheckout } from "./views/checkout.js";
import { renderConfirmation } from "./views/confirmation.js";
import { renderBookings } from "./views/bookings.js";
import { canCheckIn, renderScan } from "./views/scan.js";

const routes = [
  [/^\/$/, renderMovies, "Movies"],
  [/^\/movies\/([\w-]+)$/, renderMovie, "Showtimes"],
  [/^\/showtimes\/([\w-]+)$/, renderSeats, "Choose seats"],
  [/^\/login$/, renderLogin, "Log in"],
  [/^\/signup$/, renderSignup, "Sign up"],
  [/^\/checkout\/([\w-]+)$/, renderCheckout, "Checkout"],
  [/^\/bookings$/, renderBookings, "My bookings"],
  [/^\/bookings\/([\w-]+)$/, renderConfirmation, "Your booking"],
  [/^\/staff\/scan$/, renderScan, "Scan tickets"],
];

const main = document.getElementById("main");
let cleanup = null;

/** Go to an app path (pushState), or replace the current entry. */
export function navigate(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", path);
  route();
}

function notFound(root) {
  root.replaceChildren(h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, h("a", { href: "/" }, "Back to the movies")));
}

let current = 0; // the number of the latest navigation: a slower, older view cleans up after itself

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const visit = ++current;
  const { pathname, search } = window.location;
  const match = routes.map(([re, view, name]) => [pathname.match(re), view, name]).find(([m]) => m);
  const [found, view, name] = match || [[], notFound, "Not found"];
  document.title = `${name} · Movie Booking`;
  const root = h("div", { class: "view" });
  main.replaceChildren(root);
  const ctx = { params: found.slice(1), query: new URLSearchParams(search), navigate };
  const stop = await Promise.resolve().then(() => view(root, ctx)).catch((error) => failed(root, error));
  if (visit !== current) return stop && stop();
  cleanup = typeof stop === "function" ? stop : null;
  (root.querySelector("h1") || main).focus();
}

function failed(root, error) {
  root.replaceChildren(h("h1", { tabindex: "-1" }, "Something went wrong"),
    h("p", { role: "alert" }, error.message || String(error)), h("p", {}, h("a", { href: "/" }, "Back to the movies")));
}

async function renderAccount() {
  const nav = document.getElementById("account");
  if (!isLoggedIn()) {
    nav.replaceChildren(h("a", { href: "/login" }, "Log in"), h("a", { href: "/signup", class: "button-link" }, "Sign up"));
    return;
  }
  const out = h("button", { type: "button", class: "link-button", onclick: () => logOut().then(() => navigate("/")) }, "Log out");
  nav.replaceChildren(h("a", { href: "/bookings" }, "My bookings"), out);
  const me = await api("/api/auth/me").catch(() => null);
  if (!me || !isLoggedIn()) return;
  nav.prepend(h("span", { class: "who", "data-testid": "username" }, me.username));
  if (canCheckIn(me)) nav.querySelector('a[href="/bookings"]').after(h("a", { href: "/staff/scan" }, "Scan tickets"));
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.origin !== location.origin || event.ctrlKey || event.metaKey || event.shiftKey) return;
  if (link.pathname.startsWith("/api/")) return;
  event.preventDefault();
  navigate(link.pathname + link.search);
});
window.addEventListener("popstate", route);
window.addEventListener("auth-changed", renderAccount);
renderAccount();
route();
