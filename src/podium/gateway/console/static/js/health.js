// GET /v2/{endpoint}/health, as the console shows it: job counts and worker states.

import { h } from "./dom.js";

export const JOB_COUNTS = [
  ["inQueue", "In queue"],
  ["inProgress", "In progress"],
  ["completed", "Completed"],
  ["failed", "Failed"],
];

// `ready` is idle + running, so it is not shown on its own.
const WORKER_STATES = [
  ["initializing", "initializing", "queued"],
  ["idle", "idle", "ok"],
  ["running", "running", "running"],
  ["throttled", "throttled", "warn"],
  ["unhealthy", "unhealthy", "bad"],
];

/** One worker's status (GET /v1/endpoints/{id}/workers) as a badge. */
export function workerStatusBadge(status) {
  const known = WORKER_STATES.find(([key]) => key === status);
  return h("span", { class: `badge ${known ? known[2] : "muted"}` }, known ? known[1] : status);
}

/** Worker states with a count above zero, as badges ("1 idle", "2 running"). */
export function workerBadges(workers) {
  const shown = WORKER_STATES.filter(([key]) => workers && workers[key] > 0);
  if (!shown.length) return h("span", { class: "muted-text" }, "no workers");
  return h(
    "span",
    { class: "badges" },
    shown.map(([key, label, kind]) => h("span", { class: `badge ${kind}` }, `${workers[key]} ${label}`)),
  );
}

/** Every worker state with its count, as a definition list. */
export function workerCounts(workers) {
  return h(
    "dl",
    { class: "stats" },
    [...WORKER_STATES, ["ready", "ready (idle + running)", "ok"]].map(([key, label]) =>
      h("div", { class: "stat" }, h("dt", {}, label), h("dd", { "data-worker": key }, String(workers[key] ?? 0))),
    ),
  );
}

/** Job counts as a definition list (the four of RunPod's console, then the extensions). */
export function jobCounts(jobs) {
  const extra = [
    ["retried", "Retried"],
    ["cancelled", "Cancelled"],
    ["timedOut", "Timed out"],
  ];
  return h(
    "dl",
    { class: "stats" },
    [...JOB_COUNTS, ...extra].map(([key, label]) =>
      h("div", { class: "stat" }, h("dt", {}, label), h("dd", { "data-jobs": key }, String(jobs[key] ?? 0))),
    ),
  );
}
