// What gridmap's pages share (loaded before each page's own script).
"use strict";

// the server's `detail`: a sentence, or FastAPI's list of validation errors
function detailText(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".")}: ${d.msg}`
      : JSON.stringify(d))).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

// the district's map with no layers yet: gridmap's own tiles are added by each page
function baseMap() {
  return new maplibregl.Map({
    container: "map",
    style: {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background",
                 paint: { "background-color": "#f4f1ea" } }],
    },
    center: [109.05, 34.2],
    zoom: 11,
    attributionControl: false,
  });
}

// a new element with a class and a text (never HTML: text is text)
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// a button that calls *onClick*
function button(text, onClick, className) {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// a request that failed: the server's words (its `detail`), and the status (0: no answer)
class RequestError extends Error {
  constructor(url, status, detail) {
    super(detail || i18n.t("http.status", { url, status }));
    this.url = url;
    this.status = status;
  }
}

// the body and ETag of an answer; a RequestError with the server's words if it failed
async function request(url, init = {}) {
  let res;
  let text;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
    text = await res.text();
  } catch (err) {
    throw new RequestError(url, 0, i18n.t("problem.network", { url, message: err.message }));
  }
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;  // not JSON (a proxy's error page): the status says enough
  }
  if (!res.ok) throw new RequestError(url, res.status, detailText(body));
  return { body, etag: res.headers.get("ETag") };
}

const getJSON = async (url, init) => (await request(url, init)).body;

// the value of a cookie of this site ("" when absent)
function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

// ---- incidents (the dispatcher's and the grid worker's pages) ---------------------------

// a step of a case's timeline: the action's name, or the intake's, a re-routing's, the
// overdue job's warning or escalation
function eventLabel(action) {
  if (action.startsWith("escalate_")) return i18n.t("event.escalate");
  if (action.startsWith("warn_")) return i18n.t("event.warn");
  if (action === "collect" || action === "route") return i18n.t(`event.${action}`);
  return i18n.label("action", action);
}
