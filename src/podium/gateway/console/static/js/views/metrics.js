// The endpoint page's Metrics tab: RunPod's seven charts over the last hour, 6 hours, day
// or week, from GET /v2/{id}/metrics, drawn with uPlot (vendored in static/vendor/uplot/,
// loaded when the tab is first opened). Refreshed every 10 s while the tab is shown.
// Hovering a chart shows every series' value at that time in its legend (the charts'
// cursors move together); the charts follow their container's width and the light or dark
// scheme.

import { ApiError } from "../api.js";
import { errorBox, field, fill, formatMs, h } from "../dom.js";

const INTERVALS = [
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["1d", "Last day"],
  ["1w", "Last week"],
];
const INTERVAL_STORAGE = "podium.metricsInterval";
const REFRESH_MS = 10_000;
const HEIGHT = 190;

// Series colours are CSS custom properties (style.css, light and dark).
const PERCENTILES = [
  ["p70", "P70", "--chart-1"],
  ["p90", "P90", "--chart-4"],
  ["p98", "P98", "--chart-3"],
];

/** [key in the answer, caption, unit, [[series key, label, colour]]] */
const CHARTS = [
  [
    "requests",
    "Requests",
    "count",
    [
      ["total", "Total", "--chart-1"],
      ["completed", "Completed", "--chart-2"],
      ["failed", "Failed", "--chart-3"],
      ["retried", "Retried", "--chart-4"],
      ["cancelled", "Cancelled", "--chart-5"],
      ["timedOut", "Timed out", "--chart-6"],
    ],
  ],
  ["executionMs", "Execution time", "ms", PERCENTILES],
  ["delayMs", "Delay time", "ms", PERCENTILES],
  ["coldStartMs", "Cold start time", "ms", PERCENTILES],
  [
    "coldStarts",
    "Cold start count",
    "count",
    [
      ["total", "Total", "--chart-1"],
      ["restored", "Restored from a snapshot", "--chart-2"],
    ],
  ],
  [
    "webhooks",
    "Webhook responses",
    "count",
    [
      ["sent", "Sent", "--chart-1"],
      ["succeeded", "Succeeded", "--chart-2"],
      ["failed", "Failed", "--chart-3"],
    ],
  ],
  [
    "workers",
    "Worker states",
    "count",
    [
      ["running", "Running", "--chart-1"],
      ["idle", "Idle", "--chart-2"],
      ["throttled", "Throttled", "--chart-4"],
      ["initializing", "Initializing", "--chart-6"],
      ["unhealthy", "Unhealthy", "--chart-3"],
    ],
  ],
].map(([key, title, unit, series]) => ({ key, title, unit, series }));

/** The one-line summary: [label, where in `totals`, data-total]. */
const TOTALS = [
  ["Requests", ["requests", "total"], "total"],
  ["Completed", ["requests", "completed"], "completed"],
  ["Failed", ["requests", "failed"], "failed"],
  ["Retried", ["requests", "retried"], "retried"],
  ["Cold starts", ["coldStarts", "total"], "coldStarts"],
  ["Webhooks sent", ["webhooks", "sent"], "webhooksSent"],
];

// Whole-number steps for the count axes (no "0.5 requests").
const COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500].flatMap((n) => [n, n * 1e3, n * 1e6]).sort((a, b) => a - b);

let uplotLoading = null;

/** uPlot's module, imported once, the first time a Metrics tab is opened. */
function loadUPlot() {
  uplotLoading ??= import("../../vendor/uplot/uPlot.esm.min.js").then((m) => m.default);
  return uplotLoading;
}

let nextPanel = 0;

function savedInterval() {
  const saved = sessionStorage.getItem(INTERVAL_STORAGE);
  return INTERVALS.some(([v]) => v === saved) ? saved : "1h";
}

function formatCount(v) {
  if (v === null || v === undefined) return "—";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** An axis label in ms: 0 ms, 250 ms, 1.5 s, 2 min. */
function axisMs(v) {
  if (v < 1000) return `${v} ms`;
  if (v < 60_000) return `${+(v / 1000).toFixed(2)} s`;
  if (v < 3_600_000) return `${+(v / 60_000).toFixed(1)} min`;
  return `${+(v / 3_600_000).toFixed(1)} h`;
}

function legendTime(ts) {
  if (ts === null || ts === undefined) return "—";
  return new Date(ts * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
}

/** The y axis as wide as its longest label (uPlot's own recipe). */
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  let size = axis.ticks.size + axis.gap;
  const longest = (values || []).reduce((a, v) => (v.length > a.length ? v : a), "");
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / window.devicePixelRatio;
  }
  return Math.ceil(size);
}

/** A lone value between gaps draws no line: draw it as a point. */
function isolatedPoints(u, seriesIdx, show) {
  if (show) return null; // uPlot draws every point already
  const ys = u.data[seriesIdx];
  const lone = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] !== null && ys[i] !== undefined && ys[i - 1] == null && ys[i + 1] == null) lone.push(i);
  }
  return lone.length ? lone : null;
}

/** The colours of the current scheme, read from style.css's custom properties. */
function themeColors() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  const colors = { axis: read("--muted"), grid: read("--chart-grid") || read("--border"), surface: read("--surface") };
  for (let i = 1; i <= 6; i++) colors[`--chart-${i}`] = read(`--chart-${i}`);
  return colors;
}

function chartOptions(def, width, colors, syncKey) {
  const count = def.unit === "count";
  const format = count ? formatCount : formatMs;
  const axisLine = { stroke: colors.grid, width: 1 };
  return {
    width,
    height: HEIGHT,
    // No drag-to-zoom (the refresh would undo it); the charts' cursors move together.
    cursor: { y: false, drag: { x: false, y: false, setScale: false }, sync: { key: syncKey }, points: { size: 7 } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    axes: [
      { stroke: colors.axis, grid: axisLine, ticks: axisLine },
      {
        stroke: colors.axis,
        grid: axisLine,
        ticks: axisLine,
        size: axisSize,
        values: (u, splits) => splits.map((v) => (count ? formatCount(v) : axisMs(v))),
        ...(count ? { incrs: COUNT_INCRS } : {}),
      },
    ],
    series: [
      { label: "Time", value: (u, ts) => legendTime(ts) },
      ...def.series.map(([, label, color]) => ({
        label,
        stroke: colors[color],
        width: 2,
        value: (u, v) => format(v),
        points: { filter: isolatedPoints, fill: colors.surface },
      })),
    ],
  };
}

/** uPlot's data for one chart: [time, series…]; a series the answer lacks is all gaps. */
function chartData(def, metrics) {
  const time = metrics.time || [];
  const block = metrics[def.key] || {};
  return [time, ...def.series.map(([key]) => (Array.isArray(block[key]) ? block[key] : time.map(() => null)))];
}

function hasData(data) {
  return data.slice(1).some((ys) => ys.some((v) => v !== null && v !== undefined && v !== 0));
}

/** The panel; `show()` when its tab is opened, `hide()` when another one is. */
export function metricsPanel(ctx, endpointId, { loadBalancer = false } = {}) {
  nextPanel += 1;
  const syncKey = `podium-metrics-${nextPanel}`;
  const interval = h(
    "select",
    { name: "interval" },
    INTERVALS.map(([value, label]) => h("option", { value }, label)),
  );
  interval.value = savedInterval();
  const totals = h(
    "dl",
    { class: "metrics-totals" },
    TOTALS.map(([label, , key]) => h("div", {}, h("dt", {}, label), h("dd", { "data-total": key }, "—"))),
  );
  const problems = h("div", { class: "metrics-problems" });
  const updated = h("p", { class: "muted-text updated metrics-updated" }, "Loading…");
  const charts = CHARTS.map((def) => {
    const holder = h("div", { class: "metrics-plot" });
    const empty = h("p", { class: "metrics-empty muted-text", hidden: true }, "No data in this interval");
    const figure = h("figure", { class: "metrics-chart", "data-chart": def.key }, h("figcaption", {}, def.title), holder, empty);
    return { def, figure, holder, empty, plot: null, data: null };
  });
  const element = h(
    "section",
    { class: "card metrics", "aria-labelledby": "metrics-title" },
    h("div", { class: "metrics-head" }, h("h2", { id: "metrics-title" }, "Metrics"), field("Interval", interval)),
    h(
      "p",
      { class: "hint" },
      loadBalancer
        ? "A load-balancing endpoint has no queue: each proxied request counts as completed when answered below 500 (failed otherwise), its execution time is the time to its answer, and it has no delay time. "
        : "",
      "Hover over a chart (or tap it) to read each series at that time. Times are bucket starts, in your time zone.",
    ),
    totals,
    problems,
    h("div", { class: "metrics-grid" }, charts.map((c) => c.figure)),
    updated,
  );

  let timer = null;
  let seq = 0; // the answer of the latest request wins (the interval may change meanwhile)
  let inFlight = false;
  let last = null;
  let problem = "";

  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const chart = charts.find((c) => c.holder === entry.target);
      const width = Math.floor(entry.contentRect.width);
      if (chart && chart.plot && width > 0 && width !== chart.plot.width) chart.plot.setSize({ width, height: HEIGHT });
    }
  });
  const scheme = window.matchMedia("(prefers-color-scheme: dark)");
  const onScheme = () => {
    for (const chart of charts) destroy(chart);
    if (last) draw(last);
  };
  scheme.addEventListener("change", onScheme);

  function destroy(chart) {
    if (!chart.plot) return;
    resizer.unobserve(chart.holder);
    chart.plot.destroy();
    chart.plot = null;
  }

  async function draw(metrics) {
    const UPlot = await loadUPlot();
    if (ctx.signal.aborted) return;
    const colors = themeColors();
    for (const [, [group, key], name] of TOTALS) {
      const value = metrics.totals && metrics.totals[group] ? metrics.totals[group][key] : null;
      totals.querySelector(`[data-total="${name}"]`).textContent = formatCount(value ?? 0);
    }
    for (const chart of charts) {
      const data = chartData(chart.def, metrics);
      if (chart.plot) {
        chart.plot.setData(data);
      } else {
        const width = Math.floor(chart.holder.clientWidth) || 300;
        chart.plot = new UPlot(chartOptions(chart.def, width, colors, syncKey), data, chart.holder);
        resizer.observe(chart.holder);
      }
      chart.empty.hidden = hasData(data);
      chart.figure.classList.toggle("is-empty", !chart.empty.hidden);
    }
    const step = metrics.stepSeconds ? `, one point per ${metrics.stepSeconds >= 3600 ? `${metrics.stepSeconds / 3600} h` : `${metrics.stepSeconds / 60} min`}` : "";
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}${step}; refreshed every 10 s while this tab is open.`;
  }

  function showProblem(message) {
    if (message === problem) return; // an alert repeated every 10 s would be noise
    problem = message;
    fill(problems, message ? errorBox(message) : null);
  }

  async function load() {
    seq += 1;
    const mine = seq;
    inFlight = true;
    try {
      const metrics = await ctx.api.get(`/v2/${endpointId}/metrics?interval=${interval.value}`, { signal: ctx.signal });
      if (mine !== seq) return;
      last = metrics;
      showProblem("");
      await draw(metrics);
    } catch (err) {
      if (mine !== seq) return;
      if (err instanceof ApiError) showProblem(`Could not load the metrics: ${err.message}`);
      else if (err.name !== "AbortError") {
        showProblem(`Could not draw the charts: ${err}`);
        console.error(err);
      }
    } finally {
      if (mine === seq) inFlight = false;
    }
  }

  interval.addEventListener("change", () => {
    sessionStorage.setItem(INTERVAL_STORAGE, interval.value);
    load();
  });

  const panel = {
    element,
    show() {
      load();
      if (timer === null) {
        timer = window.setInterval(() => {
          if (!document.hidden && !inFlight) load();
        }, REFRESH_MS);
      }
    },
    hide() {
      if (timer !== null) window.clearInterval(timer);
      timer = null;
    },
  };
  ctx.onLeave(() => {
    panel.hide();
    scheme.removeEventListener("change", onScheme);
    for (const chart of charts) destroy(chart);
    resizer.disconnect();
  });
  return panel;
}
