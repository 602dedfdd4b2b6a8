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
