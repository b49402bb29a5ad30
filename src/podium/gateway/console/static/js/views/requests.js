// The endpoint page's Requests tab (admin): the job history of GET /v2/{id}/requests,
// newest first, filtered by status and time, a page at a time ("Load more"). A job whose
// data is still retained can be opened; after retention only its record remains.

import { ApiError } from "../api.js";
import { codeBlock, errorBox, field, fill, formatMs, h, notice, statusBadge } from "../dom.js";

const STATUSES = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
const PAGE = 20;
const REFRESH_MS = 5000; // the route allows 10 calls per 10 s (as RunPod's /requests)

/** A time for the table: the time of day (and the date when not today); ISO in the title. */
function when(iso) {
  const d = new Date(iso);
  const today = d.toDateString() === new Date().toDateString();
  return h("time", { datetime: iso, title: iso }, today ? d.toLocaleTimeString() : d.toLocaleString());
}

function isoOrEmpty(localValue) {
  // <input type="datetime-local"> gives local time without a zone.
  return localValue ? new Date(localValue).toISOString() : "";
}

/** The panel; `show()` when its tab is opened, `hide()` when another one is. */
export function requestsPanel(ctx, endpointId) {
  const status = h(
    "select",
    { name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s }, s.replace("_", " ").toLowerCase())),
  );
  const since = h("input", { type: "datetime-local", name: "since", step: 1 });
  const until = h("input", { type: "datetime-local", name: "until", step: 1 });
  const filters = h(
    "form",
    { class: "requests-filters", "aria-label": "Filter requests" },
    field("Status", status),
    field("Created from", since),
    field("Created before", until),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "button secondary" }, "Apply"),
    ),
  );
  const live = h("div", { role: "status", class: "muted-text requests-summary" });
  const body = h("div", { class: "requests-body" });
  const more = h("button", { type: "button", class: "button small secondary", hidden: true }, "Load more");
  const detail = h("div", { class: "requests-detail" });
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "requests-title" },
    h("h2", { id: "requests-title" }, "Requests"),
    h(
      "p",
      { class: "hint" },
      "Every job of this endpoint, newest first. Inputs and outputs are never listed; a finished job's record stays after its data is deleted.",
    ),
    filters,
    live,
    body,
    h("div", { class: "actions" }, more),
    detail,
  );

  let rows = [];
  let cursor = null;
  let timer = null;
  let busy = false;

  function query(extra = {}) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (status.value) params.set("status", status.value);
    if (since.value) params.set("since", isoOrEmpty(since.value));
    if (until.value) params.set("until", isoOrEmpty(until.value));
    for (const [k, v] of Object.entries(extra)) params.set(k, v);
    return `/v2/${endpointId}/requests?${params}`;
  }

  async function load(append) {
    if (busy) return;
    busy = true;
    try {
      const page = await ctx.api.get(query(append && cursor ? { cursor } : {}), { signal: ctx.signal });
      rows = append ? rows.concat(page.requests) : page.requests;
      cursor = page.nextCursor;
      render();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(live, errorBox(`Could not load the requests: ${err.message}`));
    } finally {
      busy = false;
    }
  }

  async function open(jobId) {
    fill(detail, h("p", { class: "muted-text" }, "Loading…"));
    try {
      const st = await ctx.api.get(`/v2/${endpointId}/status/${jobId}`, { signal: ctx.signal });
      fill(detail, h("h3", {}, `Job ${jobId}`), codeBlock(JSON.stringify(st, null, 2), `status of job ${jobId}`));
    } catch (err) {
      if (err.status === 404) fill(detail, notice(`Job ${jobId}: its data was deleted after retention; only the record above remains.`));
      else fill(detail, errorBox(err.message));
    }
  }

  function render() {
    more.hidden = !cursor;
    live.textContent = rows.length
      ? `${rows.length} request${rows.length === 1 ? "" : "s"}${cursor ? " (more below)" : ""}`
      : "";
    if (!rows.length) {
      fill(body, h("p", { class: "muted-text requests-empty" }, "No requests match."));
      return;
    }
    fill(
      body,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table responsive requests" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Job", "Status", "Created", "Delay", "Execution", "Worker", "Retries", "Error"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((r) =>
              h(
                "tr",
                { "data-job": r.id },
                h(
                  "td",
                  { "data-label": "Job", class: "mono" },
                  h(
                    "button",
                    { type: "button", class: "link-button", title: r.id, "aria-label": `Open job ${r.id}`, onclick: () => open(r.id) },
                    `${r.id.slice(0, 8)}…`,
                  ),
                ),
                h("td", { "data-label": "Status" }, statusBadge(r.status)),
                h("td", { "data-label": "Created" }, when(r.createdAt)),
                h("td", { "data-label": "Delay", class: "num" }, formatMs(r.delayTime)),
                h("td", { "data-label": "Execution", class: "num" }, formatMs(r.executionTime)),
                h("td", { "data-label": "Worker", class: "mono" }, r.workerId || "—"),
                h("td", { "data-label": "Retries", class: "num" }, String(r.retries ?? 0)),
                h("td", { "data-label": "Error", class: "error-cell", title: r.error || "" }, r.error ? r.error.slice(0, 120) : ""),
              ),
            ),
          ),
        ),
      ),
    );
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    cursor = null;
    fill(detail);
    load(false);
  });
  more.addEventListener("click", () => load(true));

  return {
    element,
    show() {
      load(false);
      if (timer === null) {
        // Refresh the first page while nobody paged further (that would lose the place).
        timer = window.setInterval(() => {
          if (rows.length <= PAGE && !document.hidden) load(false);
        }, REFRESH_MS);
        ctx.onLeave(() => this.hide());
      }
    },
    hide() {
      if (timer !== null) window.clearInterval(timer);
      timer = null;
    },
  };
}
