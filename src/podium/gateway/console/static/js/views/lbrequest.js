// A load-balancing endpoint's test request: method, path and JSON body → the gateway's
// path form /lb/{id}/<path> (same origin as the console, with the signed-in key) → the
// status, the worker that answered (X-Runpod-Worker-Id) and the body, as text.

import { ApiError } from "../api.js";
import { errorBox, field, fill, formatMs, h } from "../dom.js";

const WORKER_ID_HEADER = "X-Runpod-Worker-Id";
const SHOWN_CHARS = 100_000; // a longer answer is cut, with a note

/** The body as text: JSON pretty-printed, anything else as it came, cut when long. */
function shownBody(text, contentType) {
  let shown = text;
  if ((contentType || "").includes("json")) {
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      shown = text;
    }
  }
  if (shown.length > SHOWN_CHARS) {
    shown = `${shown.slice(0, SHOWN_CHARS)}\n… (${text.length} characters in all)`;
  }
  return shown;
}

export function lbTestRequest(ctx, endpoint) {
  const id = endpoint.id;
  const method = h("select", { name: "method" }, ["GET", "POST"].map((m) => h("option", { value: m }, m)));
  const path = h("input", { type: "text", name: "path", value: "/", spellcheck: "false", maxlength: 2000 });
  const body = h("textarea", { name: "body", rows: 6, spellcheck: "false", class: "mono" }, "{}");
  const bodyField = field("Body (JSON)", body, "Sent with Content-Type: application/json.");
  const send = h("button", { type: "submit", class: "button" }, "Send");
  const problems = h("div");
  const answer = h("div", { class: "lb-answer", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "lb-request-form" },
    h(
      "div",
      { class: "request-line" },
      field("Method", method),
      field("Path", path, `Sent to /lb/${id}<path>: your workers' server gets <path>.`),
    ),
    bodyField,
    h("div", { class: "actions" }, send),
  );
  const showBody = () => {
    bodyField.hidden = method.value === "GET"; // a GET carries no body
  };
  method.addEventListener("change", showBody);
  showBody();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problems);
    let target = path.value.trim() || "/";
    if (!target.startsWith("/")) target = `/${target}`;
    const options = { headers: {}, signal: ctx.signal };
    if (method.value !== "GET") {
      const text = body.value.trim();
      if (text) {
        try {
          JSON.parse(text);
        } catch (err) {
          fill(problems, errorBox(`The body is not valid JSON: ${err.message}`));
          return;
        }
      }
      options.headers["Content-Type"] = "application/json";
      options.body = text;
    }
    send.disabled = true;
    fill(answer, h("p", { class: "muted-text" }, `${method.value} ${target}: waiting for a worker…`));
    const began = performance.now();
    try {
      const response = await ctx.api.send(method.value, `/lb/${id}${target}`, options);
      const text = await response.text();
      const elapsed = performance.now() - began;
      const worker = response.headers.get(WORKER_ID_HEADER);
      fill(
        answer,
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"),
          h(
            "dd",
            {},
            h("span", { class: `badge ${response.ok ? "ok" : "bad"} lb-status` }, String(response.status)),
            response.statusText ? ` ${response.statusText}` : null,
            h("span", { class: "muted-text" }, ` · ${formatMs(elapsed)}`),
          ),
          h("dt", {}, "Worker"),
          h("dd", {}, worker ? h("code", { class: "lb-worker" }, worker) : h("span", { class: "muted-text" }, "—")),
        ),
        h("h3", {}, "Response body"),
        h(
          "pre",
          { class: "code lb-body", tabindex: "0", "aria-label": "Response body" },
          text ? shownBody(text, response.headers.get("Content-Type")) : "(empty)",
        ),
      );
    } catch (err) {
      if (err.name === "AbortError") return;
      fill(answer);
      fill(problems, errorBox(err instanceof ApiError ? err.message : `Not sent: ${err}`));
    } finally {
      send.disabled = false;
    }
  });

  const element = h(
    "section",
    { class: "card lb-request", "aria-labelledby": "lb-request-title" },
    h("h2", { id: "lb-request-title" }, "Test request"),
    h(
      "p",
      { class: "hint" },
      "Goes straight to one of the endpoint's workers (its HTTP server); the first one may take a while to start.",
    ),
    form,
    problems,
    answer,
  );
  return { element };
}
