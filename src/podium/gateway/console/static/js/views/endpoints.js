// The endpoints list: every endpoint the key reaches, with job counts and worker states
// refreshed every 2 s from /health.

import { ApiError } from "../api.js";
import { append, errorBox, fill, formatTime, h } from "../dom.js";
import { JOB_COUNTS, workerBadges } from "../health.js";
import { isLoadBalancer } from "../snippets.js";

const REFRESH_MS = 2000;

export async function endpointsView(ctx) {
  ctx.title("Endpoints");
  const admin = ctx.canGateway("admin"); // lists every endpoint, may deploy
  const updated = h("p", { class: "muted-text updated" });
  const problems = h("div");
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table responsive endpoints" },
    h("caption", { class: "visually-hidden" }, "Endpoints, job counts and worker states (live)"),
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
    );
    return { row, counts, workers };
  }

  async function refresh() {
    const endpoints = await listEndpoints();
    const ids = endpoints.map((e) => e.id);
    if (ids.join() !== [...rows.keys()].join()) {
      rows.clear();
      fill(body, endpoints.map((ep) => {
        const entry = rowFor(ep);
        rows.set(ep.id, entry);
        return entry.row;
      }));
    }
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
