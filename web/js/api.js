// The public API through the gateway (same origin): a fetch wrapper, the tokens
// (sessionStorage: they end with the tab) and one refresh on a 401.

const TOKENS_KEY = "mb.tokens";

/** An error answer of the API: {error: {code, message, request_id, details?}}. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `Request failed (HTTP ${status})`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details;
    this.requestId = error.request_id;
  }
}

export function loadTokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS_KEY));
  } catch {
    return null;
  }
}

function saveTokens(answer) {
  const tokens = { access: answer.access_token, refresh: answer.refresh_token };
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  window.dispatchEvent(new Event("auth-changed"));
}

export function clearTokens() {
  sessionStorage.removeItem(TOKENS_KEY);
  window.dispatchEvent(new Event("auth-changed"));
}

export const isLoggedIn = () => Boolean(loadTokens());

async function send(path, { method = "GET", json, form, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = new URLSearchParams(form);
  }
  const tokens = loadTokens();
  if (auth && tokens) init.headers.Authorization = `Bearer ${tokens.access}`;
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, { error: { code: "network_error", message: "Cannot reach the server. Check your connection and try again." } });
  }
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

let refreshing = null;

/** Trade the refresh token for a new pair; concurrent callers share one request. */
function refreshTokens() {
  const tokens = loadTokens();
  if (!tokens) return Promise.resolve(false);
  refreshing ??= send("/api/auth/refresh", { method: "POST", json: { refresh_token: tokens.refresh }, auth: false })
    .then(parse)
    .then((answer) => (saveTokens(answer), true))
    .catch(() => (clearTokens(), false))
    .finally(() => (refreshing = null));
  return refreshing;
}

/** Send with the user's token; on a 401, refresh the tokens once and send again. */
async function sendAuthorized(path, options) {
  const response = await send(path, options);
  if (response.status === 401 && options.auth !== false && loadTokens()) {
    if (await refreshTokens()) return send(path, options);
  }
  return response;
}

/** Call the API; JSON in and out; throws ApiError. Retries once after refreshing on 401. */
export async function api(path, options = {}) {
  return parse(await sendAuthorized(path, options));
}

/** A file of the API that needs the user's token (an <img src> cannot send one), as a Blob. */
export async function apiFile(path, accept) {
  const response = await sendAuthorized(path, { headers: { Accept: accept } });
  return response.ok ? response.blob() : parse(response); // parse throws the ApiError
}

export async function logIn(username, password) {
  saveTokens(await api("/api/auth/token", { method: "POST", form: { username, password }, auth: false }));
}

export async function logOut() {
  const tokens = loadTokens();
  clearTokens();
  if (tokens) {
    await api("/api/auth/logout", { method: "POST", json: { refresh_token: tokens.refresh }, auth: false }).catch(() => {});
  }
}

/** A random id for an Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
