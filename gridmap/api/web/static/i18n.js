// What the pages say, in Simplified Chinese or English (loaded before each page's script).
// Page text comes from a JSON catalogue (/static/i18n/<language>.json); the names of the
// domain's vocabulary (roles, stages, facility types, bands…) and the deployment's time zone
// from GET /api/locale, which reads gridmap's gettext catalogue — one source for the API, the
// CLI and the pages. The language: the page's switch (cookie gridmap_lang, which the server
// reads too, so its error messages agree), else what the server chose for this browser
// (Accept-Language, then the deployment's setting). Large text is a choice kept in
// localStorage. Elements say what they show with data-i18n="key" (text),
// data-i18n-placeholder, data-i18n-aria-label, data-i18n-title.
"use strict";

const i18n = (() => {
  const COOKIE = "gridmap_lang";
  const LANGUAGES = ["zh-CN", "en"];
  const LARGE = "gridmap-large-text";
  const state = { language: null, strings: {}, labels: {}, timeZone: "Asia/Shanghai" };

  const chosen = () => {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(`${COOKIE}=`));
    const value = hit ? decodeURIComponent(hit.slice(COOKIE.length + 1)) : "";
    return LANGUAGES.includes(value) ? value : null;
  };

  function remember(language) {
    document.cookie = `${COOKIE}=${language}; path=/; max-age=31536000; SameSite=Lax`;
  }

  // large text before anything is drawn (no jump once the page is up)
  function applyLarge(on) {
    document.documentElement.classList.toggle("large-text", on);
    const button = document.getElementById("text-size");
    if (button) button.setAttribute("aria-pressed", String(on));
  }
  applyLarge(localStorage.getItem(LARGE) === "1");

  // "{name}" → vars.name
  function fill(text, vars) {
    return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : text;
  }

  function t(key, vars) {
    const text = state.strings[key];
    return fill(text === undefined ? key : text, vars);
  }

  // a count: "1 grid" / "3 grids" (a language without the .one form uses .other)
  function tn(key, n) {
    const one = `${key}.one`;
    const form = n === 1 && one in state.strings ? one : `${key}.other`;
    return t(form, { n: n.toLocaleString(state.language || "zh-CN") });
  }

  const label = (kind, value) => ((state.labels[kind] || {})[value]) || String(value);

  // a moment in the deployment's time zone: 2026年11月21日 16:58 / 21 Nov 2026, 16:58
  function formatTime(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return String(iso);
    return new Intl.DateTimeFormat(state.language || "zh-CN", {
      timeZone: state.timeZone, year: "numeric", month: "long", day: "numeric",
      hour: "2-digit", minute: "2-digit", hour12: false,
    }).format(at);
  }

  function applyText(root = document) {
    for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const [attr, data] of [["placeholder", "i18nPlaceholder"],
                                ["aria-label", "i18nAriaLabel"], ["title", "i18nTitle"]]) {
      const selector = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
      for (const node of root.querySelectorAll(selector)) node.setAttribute(attr, t(node.dataset[data]));
    }
  }

  async function fetchJSON(url) {
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json();
  }

  // the locale first (it says the language when the page has no choice of its own); a
  // failure leaves the labels as their values, never the page without text
  async function load() {
    let locale = null;
    try {
      locale = await fetchJSON("/api/locale");
    } catch (err) {
      console.warn(`labels not loaded: ${err.message}`);
    }
    // the server read the cookie too: its labels are in the page's language
    state.language = chosen() || (locale && locale.language) || "zh-CN";
    if (locale) state.labels = locale.labels;
    if (locale) state.timeZone = locale.time_zone;
    remember(state.language);  // the server answers in it from now on
    try {
      state.strings = await fetchJSON(`/static/i18n/${state.language}.json`);
    } catch (err) {
      console.warn(`page text not loaded: ${err.message}`);
    }
    document.documentElement.lang = state.language;
    applyText();
    wireSwitches();
  }

  function wireSwitches() {
    const lang = document.getElementById("lang-switch");
    if (lang) {
      lang.lang = state.language === "zh-CN" ? "en" : "zh-CN";
      lang.addEventListener("click", () => {
        remember(state.language === "zh-CN" ? "en" : "zh-CN");
        location.reload();
      });
    }
    const size = document.getElementById("text-size");
    if (size) {
      size.setAttribute("aria-pressed", String(document.documentElement.classList
        .contains("large-text")));
      size.addEventListener("click", () => {
        const on = !document.documentElement.classList.contains("large-text");
        localStorage.setItem(LARGE, on ? "1" : "0");
        applyLarge(on);
        window.dispatchEvent(new Event("resize"));  // the map fits its new box
      });
    }
  }

  const ready = load();
  return { ready, t, tn, label, formatTime, applyText,
           get language() { return state.language; } };
})();
