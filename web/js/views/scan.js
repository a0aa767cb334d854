// Staff at the door: check tickets in by code (typed, pasted, or read by the camera where the
// browser has BarcodeDetector). Each answer is shown big and coloured and spoken, and the field
// is ready for the next ticket at once.

import { api, isLoggedIn } from "../api.js";
import { h, notice, title } from "../ui.js";

const THEATER_KEY = "mb.scan.theater";
const DETECT_EVERY_MS = 250;
const SAME_CODE_PAUSE_MS = 3000; // a code held in front of the camera counts once
const LOG_LENGTH = 8;

/** Staff and admins may check tickets in (the API decides; this only hides what others cannot use). */
export const canCheckIn = (user) => Boolean(user && user.roles && user.roles.some((r) => r === "staff" || r === "admin"));

export async function renderScan(root, { navigate }) {
  if (!isLoggedIn()) return navigate("/login?next=/staff/scan", { replace: true });
  root.append(title("Scan tickets"));
  const me = await api("/api/auth/me").catch(() => null);
  if (!canCheckIn(me)) return root.append(notice("error", "This page is for cinema staff."));
  const scanner = scanForm();
  root.append(scanner.form, scanner.video, scanner.result, h("h2", {}, "Recent scans"), scanner.log);
  fillTheaters(scanner.theater);
  const stopCamera = await offerCamera(scanner);
  setTimeout(() => scanner.code.focus()); // after the router has focused the heading
  return stopCamera;
}

function scanForm() {
  const code = h("input", { id: "ticket-code", name: "code", autocomplete: "off", autocapitalize: "off",
    spellcheck: "false", enterkeyhint: "go", required: true });
  const theater = h("select", { id: "scan-theater", onchange: () => localStorage.setItem(THEATER_KEY, theater.value) },
    h("option", { value: "" }, "Any theater"));
  const form = h("form", { class: "scan-form" },
    h("div", { class: "field" }, h("label", { for: "ticket-code" }, "Ticket code"), code),
    h("div", { class: "field" }, h("label", { for: "scan-theater" }, "This door's theater"), theater),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Check in")));
  const result = h("div", { class: "scan-result", role: "status", "data-testid": "scan-result" }, "Ready for the first ticket.");
  const scanner = { form, code, theater, result, video: h("video", { class: "scan-video", playsinline: true, hidden: true }),
    log: h("ol", { class: "scan-log", "data-testid": "scan-log" }), latest: 0 };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = code.value.trim();
    code.value = "";
    code.focus();
    if (typed) checkIn(scanner, typed);
  });
  return scanner;
}

async function fillTheaters(select) {
  const page = await api("/api/movies/theaters?limit=100").catch(() => ({ items: [] }));
  select.append(...page.items.map((t) => h("option", { value: t.id }, `${t.name}, ${t.city}`)));
  select.value = page.items.some((t) => t.id === localStorage.getItem(THEATER_KEY)) ? localStorage.getItem(THEATER_KEY) : "";
}

/** Ask the API; answers may come back out of order: the big box shows the latest scan's. */
async function checkIn(scanner, code) {
  const scan = ++scanner.latest;
  const body = { code, ...(scanner.theater.value ? { theater_id: scanner.theater.value } : {}) };
  let answer;
  try {
    answer = admitted(await api("/api/bookings/checkin", { method: "POST", json: body }));
  } catch (error) {
    answer = refused(error);
  }
  scanner.log.prepend(h("li", { "data-outcome": answer.outcome }, `${clock(new Date().toISOString())} · …${code.slice(-6)} · ${answer.headline}`));
  while (scanner.log.children.length > LOG_LENGTH) scanner.log.lastChild.remove();
  if (scan === scanner.latest) showAnswer(scanner.result, answer);
}

function admitted(ticket) {
  const details = [`Seat ${ticket.seat}`, ticket.movie_title, ticket.auditorium, clock(ticket.starts_at)].filter(Boolean);
  return { outcome: "admitted", tone: "ok", headline: "Admitted", details: details.join(" · "), spoken: `Admitted, seat ${ticket.seat}` };
}

const REFUSALS = {
  ticket_void: ["Void ticket", "void"],
  ticket_expired: ["Expired ticket", "expired"],
  too_early: ["Too early", "too early"],
  wrong_theater: ["Wrong theater", "wrong theater"],
};

function refused(error) {
  const [headline, spoken] = REFUSALS[error.code] || [];
  if (error.code === "already_admitted") {
    const at = firstAdmission(error.details);
    const when = at ? ` at ${clock(at)}` : "";
    return { outcome: "already_admitted", tone: "bad", headline: `Already admitted${when}`, details: "", spoken: `Already admitted${when}` };
  }
  if (headline) return { outcome: error.code, tone: "bad", headline, details: error.message, spoken };
  if (error.status === 404) return { outcome: "unknown", tone: "bad", headline: "Unknown ticket", details: "", spoken: "Unknown ticket" };
  if (error.status === 401 || error.status === 403) {
    return { outcome: "forbidden", tone: "warn", headline: "Not allowed", details: "Log in again with a staff account.", spoken: "Not allowed" };
  }
  return { outcome: "error", tone: "warn", headline: "Not checked", details: error.message, spoken: "Not checked, try again" };
}

/** When the ticket was first admitted: the 409's details ({admitted_at}). */
const firstAdmission = (details) => (details && typeof details === "object" ? details.admitted_at : null);

/** 24-hour local time, the way staff say it: 19:02. */
const clock = (iso) => new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));

function showAnswer(box, answer) {
  box.dataset.outcome = answer.outcome;
  box.className = `scan-result scan-${answer.tone}`;
  box.replaceChildren(h("strong", { class: "scan-headline" }, answer.headline), answer.details ? h("span", {}, answer.details) : "");
  speak(answer.spoken);
}

function speak(words) {
  if (!("speechSynthesis" in window)) return;
  window.speechSynthesis.cancel(); // the newest answer, not a queue of old ones
  window.speechSynthesis.speak(new SpeechSynthesisUtterance(words));
}

/** A "Scan with camera" button where the browser can read QR codes; returns the clean-up. */
async function offerCamera(scanner) {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return undefined;
  const formats = await BarcodeDetector.getSupportedFormats().catch(() => []);
  if (!formats.includes("qr_code")) return undefined;
  let stop = null;
  const button = h("button", { type: "button", "aria-pressed": "false" }, "Scan with camera");
  button.addEventListener("click", async () => {
    if (stop) return (stop(), (stop = null), button.setAttribute("aria-pressed", "false"), scanner.code.focus());
    try {
      stop = await startCamera(scanner.video, (code) => checkIn(scanner, code));
      button.setAttribute("aria-pressed", "true");
    } catch (error) {
      showAnswer(scanner.result, { outcome: "error", tone: "warn", headline: "No camera", details: error.message, spoken: "No camera" });
    }
  });
  scanner.form.querySelector(".actions").append(button);
  return () => stop && stop();
}

async function startCamera(video, onCode) {
  const detector = new BarcodeDetector({ formats: ["qr_code"] });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  let stopped = false;
  let last = { code: "", seen: 0 };
  const look = async () => {
    if (stopped) return;
    const [found] = await detector.detect(video).catch(() => []);
    const code = found && found.rawValue.trim();
    if (code) {
      const repeated = code === last.code && Date.now() - last.seen < SAME_CODE_PAUSE_MS;
      last = { code, seen: Date.now() };
      if (!repeated) onCode(code);
    }
    setTimeout(look, DETECT_EVERY_MS);
  };
  look();
  return () => {
    stopped = true;
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
    video.hidden = true;
  };
}
