// The endpoints list: every endpoint the key reaches, with job counts and worker states
// refreshed every 2 s from /health, and a sparkline of the last hour's requests (from
// /metrics, once a minute).

import { ApiError } from "../api.js";
import { append, errorBox, fill, formatTime, h } from "../dom.js";
import { JOB_COUNTS, workerBadges } from "../health.js";
import { isLoadBalancer } from "../snippets.js";
import { sparkline } from "../sparkline.js";

const REFRESH_MS = 2000;
const SPARKLINE_MS = 60_000;

export async function endpointsView(ctx) {
  ctx.title("Endpoints");
  const admin = ctx.canGateway("admin"); // lists every endpoint, may deploy
  const updated = h("p", { class: "muted-text updated" });
  const problems = h("div");
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table responsive endpoints" },
    h("caption", { class: "visually-hidden" }, "Endpoints, job counts, worker states (live) and requests in the last hour"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Endpoint"),
        h("th", { scope: "col" }, "Template"),
        JOB_COUNTS.map(([, label]) => h("th", { scope: "col", class: "num" }, label)),
        h("th", { scope: "col" }, "Workers"),
        h("th", { scope: "col" }, "Last hour"),
      ),
    ),
    body,
  );
  const empty = h(
    "div",
    { class: "empty", hidden: true },
    admin
      ? h("p", {}, "No endpoints yet. ", h("a", { href: "#/deploy" }, "Quick Deploy"), " one in a minute.")
      : h("p", {}, "This API key reaches no endpoint. Ask an admin for access."),
  );
  append(ctx.root, [
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Endpoints"),
      admin ? h("a", { class: "button", href: "#/deploy" }, "Quick Deploy") : null,
    ),
    problems,
    h("div", { class: "table-wrap" }, table),
    empty,
    updated,
  ]);

  const rows = new Map(); // endpoint id -> {row, cells}

  async function listEndpoints() {
    if (admin) return ctx.api.get("/v1/endpoints", { signal: ctx.signal });
    return (await ctx.refreshMe()).endpoints;
  }

  function rowFor(ep) {
    const counts = Object.fromEntries(
      JOB_COUNTS.map(([key, label]) => [key, h("td", { class: "num", "data-label": label }, "…")]),
    );
    const workers = h("td", { "data-label": "Workers" }, "…");
    const spark = h("td", { "data-label": "Last hour", class: "spark" });
    const row = h(
      "tr",
      { "data-endpoint": ep.id },
      h(
        "th",
        { scope: "row", "data-label": "Endpoint" },
        h("a", { href: `#/endpoint/${ep.id}` }, ep.name),
        h("div", { class: "mono muted-text" }, ep.id),
      ),
      h(
        "td",
        { "data-label": "Template" },
        templateLabel(ep),
        isLoadBalancer(ep) ? h("div", { class: "muted-text endpoint-type" }, "load balancer") : null,
      ),
      Object.values(counts),
      workers,
      spark,
    );
    return { row, counts, workers, spark };
  }

  // Requests submitted in the last hour, one request per endpoint; an endpoint whose
  // metrics this key cannot read (or an older gateway) keeps an empty cell.
  let sparklinesAt = 0;
  function loadSparklines() {
    sparklinesAt = Date.now();
    for (const [id, entry] of rows) {
      ctx.api
        .get(`/v2/${id}/metrics?interval=1h`, { signal: ctx.signal })
        .then((metrics) => {
          const series = (metrics.requests && metrics.requests.total) || [];
          const total = metrics.totals?.requests?.total ?? series.reduce((a, v) => a + (v || 0), 0);
          const label = `${total} request${total === 1 ? "" : "s"} in the last hour`;
          fill(entry.spark, sparkline(series, label));
        })
        .catch(() => {});
    }
  }

  async function refresh() {
    const endpoints = await listEndpoints();
    const ids = endpoints.map((e) => e.id);
    const fresh = ids.join() !== [...rows.keys()].join();
    if (fresh) {
      rows.clear();
      fill(body, endpoints.map((ep) => {
        const entry = rowFor(ep);
        rows.set(ep.id, entry);
        return entry.row;
      }));
    }
    if (rows.size && (fresh || Date.now() - sparklinesAt >= SPARKLINE_MS)) loadSparklines();
    table.hidden = endpoints.length === 0;
    empty.hidden = endpoints.length !== 0;
    const results = await Promise.allSettled(
      ids.map((id) => ctx.api.get(`/v2/${id}/health`, { signal: ctx.signal })),
    );
    results.forEach((result, i) => {
      const entry = rows.get(ids[i]);
      if (result.status === "rejected") {
        fill(entry.workers, h("span", { class: "muted-text" }, "health unavailable"));
        return;
      }
      const health = result.value;
      for (const [key] of JOB_COUNTS) entry.counts[key].textContent = String(health.jobs[key]);
      fill(entry.workers, workerBadges(health.workers));
    });
    fill(problems);
    updated.textContent = `Live: updated ${formatTime(Date.now() / 1000)}, every 2 s.`;
  }

  ctx.every(REFRESH_MS, async () => {
    try {
      await refresh();
    } catch (err) {
      if (err instanceof ApiError) fill(problems, errorBox(`Live update failed: ${err.message}`));
      else throw err;
    }
  });
}

export function templateLabel(ep) {
  const names = { sd15: "Stable Diffusion v1.5", custom: "Custom command" };
  if (!ep.templateId) return ep.imageName ? `Image ${ep.imageName}` : "external workers";
  const name = names[ep.templateId] || ep.templateId;
  return ep.model ? `${name} (${ep.model})` : name;
}
