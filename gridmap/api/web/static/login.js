// gridmap sign-in page: POST /auth/session (form fields username, password) sets the page
// session cookie; then on to ?next= when it is a path on this site, else to the map.
"use strict";

// ?next= only when it is a path of this site: one "/" and then not "/" or "\" (which
// browsers read as another host), no control characters or spaces (browsers drop tabs and
// line breaks, so "/\t/evil.example" would become "//evil.example"), and the same origin
// once resolved. Anything else → "/".
function safeNext(next) {
  if (typeof next !== "string" || !/^\/(?![/\\])/.test(next) || /[\u0000-\u0020\\]/.test(next)) {
    return "/";
  }
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return "/";
  }
  return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
}

const form = document.getElementById("login-form");
const alertBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");
const { t } = i18n;

function refuse(message) {
  alertBox.textContent = message;
  submit.disabled = false;
  submit.textContent = t("login.submit");
}

async function signIn(event) {
  event.preventDefault();
  alertBox.textContent = "";
  submit.disabled = true;
  submit.textContent = t("login.busy");
  const fields = new URLSearchParams({
    username: form.elements.username.value.trim(),
    password: form.elements.password.value,
  });
  let res;
  try {
    res = await fetch("/auth/session", { method: "POST", body: fields,
                                         credentials: "same-origin" });
  } catch (err) {
    refuse(t("login.network", { message: err.message }));
    return;
  }
  if (res.ok) {
    location.assign(safeNext(new URLSearchParams(location.search).get("next")));
    return;
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const detail = detailText(body) || `HTTP ${res.status}`;
  if (res.status === 401) {
    form.elements.password.value = "";
    form.elements.password.focus();
    refuse(t("login.failed", { detail }));
  } else if (res.status === 429) {
    refuse(t("login.too.many", { detail }));
    const wait = Number(res.headers.get("Retry-After"));
    if (wait > 0) {  // the server would refuse until then anyway
      submit.disabled = true;
      setTimeout(() => { submit.disabled = false; }, wait * 1000);
    }
  } else {
    refuse(t("login.failed", { detail }));
  }
}
form.addEventListener("submit", signIn);
