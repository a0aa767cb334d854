// Log in and sign up. After either, go back to where the user was going (?next=).

import { api, logIn } from "../api.js";
import { h, show, title } from "../ui.js";

export function renderLogin(root, { query, navigate }) {
  const next = safeNext(query.get("next"));
  const form = authForm("Log in", [
    input("username", "Username or email", { autocomplete: "username", required: true }),
    input("password", "Password", { type: "password", autocomplete: "current-password", required: true }),
  ]);
  const signup = `/signup${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`;
  root.append(title("Log in"), notice(query), form.element, h("p", {}, "New here? ", h("a", { href: signup }, "Create an account")));
  form.onSubmit(async ({ username, password }) => {
    await logIn(username, password);
    navigate(next, { replace: true });
  });
}

export function renderSignup(root, { query, navigate }) {
  const next = safeNext(query.get("next"));
  const form = authForm("Create account", [
    input("email", "Email", { type: "email", autocomplete: "email", required: true }),
    input("username", "Username", { autocomplete: "username", required: true, minlength: 3, maxlength: 32,
      hint: "3–32 letters, digits, _ . or -" }),
    input("password", "Password", { type: "password", autocomplete: "new-password", required: true, minlength: 8,
      hint: "At least 8 characters; not a common password, and without your username or the part of your email before @" }),
  ]);
  const login = `/login${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`;
  root.append(title("Sign up"), form.element, h("p", {}, "Already have an account? ", h("a", { href: login }, "Log in")));
  form.onSubmit(async (values) => {
    await api("/api/auth/register", { method: "POST", json: values, auth: false });
    await logIn(values.username, values.password);
    navigate(next, { replace: true });
  });
}

/** Only app paths: never send the user to another site after logging in. */
const safeNext = (next) => (next && next.startsWith("/") && !next.startsWith("//") ? next : "/");

function notice(query) {
  return query.get("next") ? h("p", { class: "muted" }, "Log in to hold seats and pay.") : "";
}

function input(name, label, { hint, ...attrs }) {
  const hintId = hint ? `${name}-hint` : undefined;
  return h("div", { class: "field" },
    h("label", { for: name }, label),
    h("input", { id: name, name, type: "text", "aria-describedby": `${hintId || ""} ${name}-error`.trim(), ...attrs }),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    h("p", { id: `${name}-error`, class: "field-error" }));
}

function authForm(label, fields) {
  const message = h("div", { class: "messages" });
  const button = h("button", { type: "submit", class: "primary" }, label);
  const element = h("form", { class: "stack narrow" }, message, ...fields, button);
  return {
    element,
    onSubmit(handler) {
      element.addEventListener("submit", async (event) => {
        event.preventDefault();
        clearErrors(element, message);
        button.disabled = true;
        try {
          await handler(Object.fromEntries(new FormData(element)));
        } catch (error) {
          showErrors(element, message, error);
        } finally {
          button.disabled = false;
        }
      });
    },
  };
}

function clearErrors(form, message) {
  show(message, null, "");
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** 422 details name the fields: put each message under its field; the rest on top. */
function showErrors(form, message, error) {
  const details = Array.isArray(error.details) ? error.details : [];
  let placed = false;
  for (const item of details) {
    const name = (item.loc || []).at(-1);
    const control = name && form.elements[name];
    if (!control || !control.id) continue;
    control.setAttribute("aria-invalid", "true");
    form.querySelector(`#${name}-error`).textContent = cleanMessage(item.msg);
    if (!placed) control.focus();
    placed = true;
  }
  if (!placed) show(message, "error", humanError(error));
  else show(message, "error", "Please correct the fields marked below.");
}

function cleanMessage(text) {
  const message = String(text || "invalid value").replace(/^Value error, /, "");
  if (message.startsWith("String should match pattern")) return "Use 3–32 letters, digits, _ . or -, starting with a letter or digit.";
  return message.replace(/^value is not a valid email address: /, "");
}

function humanError(error) {
  if (error.status === 401) return "Wrong username or password.";
  if (error.status === 429) return "Too many attempts. Please wait a moment and try again.";
  return error.message;
}
