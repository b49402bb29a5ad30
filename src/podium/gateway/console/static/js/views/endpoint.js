// One endpoint: health and workers (live: node, GPUs, state, current job), the playground,
// the jobs this tab submitted, the metrics charts, how to call it, and (admin) the job
// history (Requests tab), scaling, worker logs and delete.
// A load-balancing endpoint (no queue): its URLs and a test request instead of the
// playground and jobs; its workers' health, requests in flight and cold start.

import { ApiError } from "../api.js";
import { append, codeBlock, errorBox, field, fill, formatMs, formatTime, h, notice, statusBadge } from "../dom.js";
import { jobCounts, workerCounts, workerStatusBadge } from "../health.js";
import { JOBS_EVENT, isFinal, recentJobs, updateJob } from "../jobs.js";
import { curlLine, isLoadBalancer, lbCurlLine, lbHostUrl, lbUrl, runUrl, typeLabel } from "../snippets.js";
import { templateLabel } from "./endpoints.js";
import { lbTestRequest } from "./lbrequest.js";
import { metricsPanel } from "./metrics.js";
import { playground } from "./playground.js";
import { requestsPanel } from "./requests.js";
import { tabs } from "../tabs.js";

const REFRESH_MS = 2000;

async function loadEndpoint(ctx, id) {
  if (ctx.can("admin")) return ctx.api.get(`/v1/endpoints/${id}`, { signal: ctx.signal });
  const me = await ctx.refreshMe();
  const endpoint = me.endpoints.find((e) => e.id === id);
  if (!endpoint) throw new ApiError(404, `Endpoint ${id} does not exist or this key cannot reach it.`);
  return endpoint;
}

export async function endpointView(ctx, id) {
  const admin = ctx.can("admin");
  const endpoint = await loadEndpoint(ctx, id);
  ctx.title(endpoint.name);
  const lb = isLoadBalancer(endpoint);

  // Health: job counts and worker states, live.
  const healthBody = h("div", { class: "health" }, h("p", { class: "muted-text" }, "Loading…"));
  const workersBody = h("div");
  const healthSection = h(
    "section",
    { class: "card", "aria-labelledby": "health-title" },
    h("h2", { id: "health-title" }, "Health"),
    healthBody,
    h("h3", {}, "Workers"),
    workersBody,
  );

  // The jobs this tab submitted.
  const jobsBody = h("div");
  const jobsSection = h(
    "section",
    { class: "card", "aria-labelledby": "jobs-title" },
    h("h2", { id: "jobs-title" }, "Recent jobs"),
    h(
      "p",
      { class: "hint" },
      admin
        ? "The jobs run from this browser tab; the Requests tab lists every caller's jobs."
        : "The jobs run from this browser tab (the list of every caller's jobs needs an admin key).",
    ),
    jobsBody,
  );

  const usage = h(
    "section",
    { class: "card", "aria-labelledby": "usage-title" },
    h("h2", { id: "usage-title" }, "Call it"),
    lb
      ? lbFacts(ctx, endpoint)
      : h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Type"),
          h("dd", { class: "endpoint-type" }, typeLabel(endpoint)),
          h("dt", {}, "Run URL"),
          h("dd", {}, h("code", { class: "run-url" }, runUrl(ctx.baseUrl(), id))),
        ),
    codeBlock(lb ? lbCurlLine(ctx.baseUrl(), endpoint) : curlLine(ctx.baseUrl(), endpoint), "curl command"),
  );

  // A load balancer has no queue: a test request to its workers instead of jobs.
  const play = ctx.can("run") && !lb ? playground(ctx, endpoint) : null;
  const test = ctx.can("run") && lb ? lbTestRequest(ctx, endpoint) : null;
  const playPanel = lb
    ? [test ? test.element : notice("This key has the read scope only: it can watch the workers but not call them.")]
    : [play ? play.element : notice("This key has the read scope only: it can watch jobs but not run them."), jobsSection];
  // Admins also get the endpoint's job history (the list shows every caller's job ids);
  // every key that reads the endpoint gets its metrics.
  const requests = admin && !lb ? requestsPanel(ctx, id) : null;
  const metrics = metricsPanel(ctx, id, { loadBalancer: lb });
  const firstLabel = lb ? "Test request" : play ? "Playground" : "Jobs";
  const main = h(
    "div",
    { class: "col-main" },
    tabs([
      { key: "playground", label: firstLabel, panel: playPanel },
      requests
        ? { key: "requests", label: "Requests", panel: requests.element, onShow: () => requests.show(), onHide: () => requests.hide() }
        : null,
      { key: "metrics", label: "Metrics", panel: metrics.element, onShow: () => metrics.show(), onHide: () => metrics.hide() },
    ].filter(Boolean)),
  );
  const aside = h("div", { class: "col-side" }, healthSection, usage, admin ? adminSections(ctx, endpoint) : null);

  append(ctx.root, [
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("p", { class: "crumbs" }, h("a", { href: "#/endpoints" }, "Endpoints"), " /"),
        h("h1", { tabindex: "-1" }, endpoint.name),
        h(
          "p",
          { class: "muted-text" },
          h("code", { class: "endpoint-id" }, id),
          ` · ${templateLabel(endpoint)} · `,
          h("span", { class: "endpoint-type", "data-type": lb ? "LOAD_BALANCER" : "QUEUE" }, typeLabel(endpoint)),
        ),
      ),
    ),
    h("div", { class: "columns" }, main, aside),
  ]);

  function renderJobs() {
    if (lb) return;
    const jobs = recentJobs(id);
    if (!jobs.length) {
      fill(jobsBody, h("p", { class: "muted-text" }, "No jobs yet: run one in the playground."));
      return;
    }
    fill(
      jobsBody,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table responsive jobs" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Job", "Status", "Delay", "Execution", "Submitted"].map((t) => h("th", { scope: "col" }, t)),
              h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Result")),
            ),
          ),
          h(
            "tbody",
            {},
            jobs.map((job) =>
              h(
                "tr",
                { "data-job": job.id },
                h("td", { "data-label": "Job", class: "mono", title: job.id }, `${job.id.slice(0, 8)}…`),
                h("td", { "data-label": "Status" }, job.gone ? h("span", { class: "badge muted" }, "expired") : statusBadge(job.status)),
                h("td", { "data-label": "Delay" }, formatMs(job.delayTime)),
                h("td", { "data-label": "Execution" }, formatMs(job.executionTime)),
                h("td", { "data-label": "Submitted" }, formatTime(job.submittedAt)),
                h(
                  "td",
                  {},
                  play && !job.gone
                    ? h("button", { type: "button", class: "button small secondary", onclick: () => play.show(job.id), "aria-label": `Show job ${job.id}` }, "Show")
                    : null,
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }
  const onJobs = (event) => {
    if (event.detail === id) renderJobs();
  };
  window.addEventListener(JOBS_EVENT, onJobs);
  ctx.onLeave(() => window.removeEventListener(JOBS_EVENT, onJobs));
  renderJobs();

  let tick = 0;
  ctx.every(REFRESH_MS, async () => {
    tick += 1;
    try {
      const health = await ctx.api.get(`/v2/${id}/health`, { signal: ctx.signal });
      fill(
        healthBody,
        lb ? null : [h("h3", {}, "Jobs"), jobCounts(health.jobs)],
        h("h3", {}, "Worker states"),
        workerCounts(health.workers),
      );
      const list = await ctx.api.get(`/v1/endpoints/${id}/workers`, { signal: ctx.signal });
      fill(workersBody, workerTable(list.workers, endpoint.templateId, lb));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(healthBody, errorBox(`Live update failed: ${err.message}`));
    }
    // Jobs this tab remembers that are still open (the playground follows its own).
    if (tick % 2 === 0 && !lb) await refreshOpenJobs(ctx, id);
  });
}

/** Where a load-balancing endpoint answers: the path form, and RunPod's host form. */
function lbFacts(ctx, endpoint) {
  const base = ctx.baseUrl();
  const host = lbHostUrl(base, endpoint.id);
  return [
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Type"),
      h("dd", { class: "endpoint-type" }, typeLabel(endpoint)),
      h("dt", {}, "URL"),
      h("dd", {}, h("code", { class: "lb-url" }, lbUrl(base, endpoint.id))),
      host ? [h("dt", {}, "Host form"), h("dd", {}, h("code", { class: "lb-host-url" }, host))] : null,
    ),
    h(
      "p",
      { class: "hint" },
      "No queue: add your server's own path (e.g. /ping, /v1/chat/completions) and send the key as " +
        "Authorization: Bearer <key>. Every answer names its worker in X-Runpod-Worker-Id.",
    ),
  ];
}

async function refreshOpenJobs(ctx, id) {
  const open = recentJobs(id).filter((j) => !j.gone && !isFinal(j.status)).slice(0, 5);
  for (const job of open) {
    try {
      updateJob(id, job.id, await ctx.api.get(`/v2/${id}/status/${job.id}`, { signal: ctx.signal }));
    } catch (err) {
      if (err.status === 404) updateJob(id, job.id, null, true);
      else throw err;
    }
  }
}

/** Seconds for people: 40 s, 3 min, 2 h 5 min. */
function formatUptime(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** The job(s) a worker holds: ids for admin keys, a count for the others (the API
 *  shows job ids to admin keys only). */
function heldJobs(w) {
  if (!w.jobCount) return h("span", { class: "muted-text" }, "—");
  if (!w.jobs) return `${w.jobCount} job${w.jobCount > 1 ? "s" : ""}`;
  return w.jobs.map((jobId) => h("div", { class: "mono", title: jobId, "data-job": jobId }, `${jobId.slice(0, 6)}…`));
}

const HEALTH_CLASS = { ready: "ok", initializing: "queued", unhealthy: "bad" };

/** A load-balancing worker's health check verdict as a badge. */
function healthBadge(health) {
  return h("span", { class: `badge ${HEALTH_CLASS[health] || "muted"}` }, health);
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return formatMs(seconds * 1000);
}

function workerTable(workers, templateId, lb = false) {
  if (!workers.length) {
    const managed = templateId || lb; // a load balancer's workers are always the fleet's
    return h(
      "p",
      { class: "muted-text" },
      managed
        ? `None running: workers start when ${lb ? "requests" : "jobs"} arrive.`
        : "None seen: this endpoint's workers are started elsewhere (no template).",
    );
  }
  // Load-balancing workers: health, requests in flight, cold start (when the API has them).
  const lbColumns = workers.some((w) => w.health !== undefined);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "table responsive workers" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Worker", "State", ...(lbColumns ? ["Health", "In flight", "Cold start"] : []), "Node", "GPUs", "Job"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        workers.map((w) => {
          const facts = [
            w.managed ? null : "started elsewhere",
            w.uptimeSeconds === null ? null : `up ${formatUptime(w.uptimeSeconds)}`,
            w.restarts ? `${w.restarts} restart${w.restarts > 1 ? "s" : ""}` : null,
          ].filter(Boolean);
          return h(
            "tr",
            { "data-worker-id": w.id },
            h(
              "td",
              { "data-label": "Worker" },
              h("div", { class: "mono" }, w.id),
              facts.length ? h("div", { class: "muted-text" }, facts.join(" · ")) : null,
            ),
            h(
              "td",
              { "data-label": "State", "data-status": w.status },
              workerStatusBadge(w.status),
              w.reason ? h("div", { class: "muted-text" }, w.reason) : null,
            ),
            lbColumns
              ? [
                  h(
                    "td",
                    { "data-label": "Health", "data-health": w.health ?? "" },
                    w.health ? healthBadge(w.health) : h("span", { class: "muted-text" }, "—"),
                  ),
                  h("td", { "data-label": "In flight", class: "num" }, w.inFlight ?? "—"),
                  h("td", { "data-label": "Cold start" }, formatSeconds(w.coldStartSeconds)),
                ]
              : null,
            h("td", { "data-label": "Node" }, w.node || h("span", { class: "muted-text" }, "—")),
            h("td", { "data-label": "GPUs" }, w.gpus.length ? w.gpus.join(", ") : w.managed ? "CPU" : "—"),
            h("td", { "data-label": "Job" }, heldJobs(w)),
          );
        }),
      ),
    ),
  );
}

/** Scaling (PATCH), worker logs and delete: admin only. */
function adminSections(ctx, endpoint) {
  const id = endpoint.id;
  const min = h("input", { type: "number", min: 0, value: endpoint.workersMin, inputmode: "numeric" });
  const max = h("input", { type: "number", min: 0, value: endpoint.workersMax, inputmode: "numeric" });
  const idle = h("input", { type: "number", min: 0, step: "any", value: endpoint.idleTimeout, inputmode: "decimal" });
  const saved = h("div", { role: "status" });
  const scaling = h(
    "form",
    { class: "card", "aria-labelledby": "scaling-title" },
    h("h2", { id: "scaling-title" }, "Scaling"),
    h("div", { class: "grid-3 align-end" }, field("Workers min", min), field("Workers max", max), field("Idle timeout (s)", idle)),
    saved,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button secondary" }, "Save")),
  );
  scaling.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await ctx.api.patch(`/v1/endpoints/${id}`, {
        workersMin: Number(min.value),
        workersMax: Number(max.value),
        idleTimeout: Number(idle.value),
      });
      fill(saved, notice("Saved: the supervisor applies it on its next pass.", "success"));
    } catch (err) {
      fill(saved, errorBox(err.message));
    }
  });

  const logs = h("pre", { class: "code logs", tabindex: "0", "aria-label": "Worker logs" }, "");
  const logsSection = h(
    "details",
    { class: "card" },
    h("summary", {}, "Worker logs"),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "button small secondary",
          onclick: async () => {
            logs.textContent = "Loading…";
            try {
              const body = await ctx.api.get(`/v1/endpoints/${id}/logs?tail=100`);
              logs.textContent =
                body.lines
                  .map((l) => `${l.time} ${l.workerId}${l.jobs.length ? ` [${l.jobs.join(",")}]` : ""} | ${l.text}`)
                  .join("\n") || "No worker has written a log yet.";
            } catch (err) {
              logs.textContent = err.message;
            }
          },
        },
        "Load the last 100 lines",
      ),
    ),
    logs,
  );

  const remove = h(
    "button",
    {
      type: "button",
      class: "button danger",
      onclick: async () => {
        if (!window.confirm(`Delete endpoint ${endpoint.name} (${id}), its queued jobs and workers?`)) return;
        try {
          await ctx.api.delete(`/v1/endpoints/${id}`);
          window.location.hash = "#/endpoints";
        } catch (err) {
          remove.after(errorBox(err.message));
        }
      },
    },
    "Delete endpoint",
  );
  return [scaling, logsSection, h("div", { class: "card danger-zone" }, h("h2", {}, "Delete"), remove)];
}
