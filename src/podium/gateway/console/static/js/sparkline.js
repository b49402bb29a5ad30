// A small inline SVG line chart (no library): the endpoints list's requests of the last hour.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

/** sparkline([0, 3, 1, …], "4 requests in the last hour") -> <svg class="sparkline">: the
 *  values left to right, 0 at the bottom, the largest at the top; gaps (null) count as 0. */
export function sparkline(values, label, { width = 80, height = 20 } = {}) {
  const ys = values.map((v) => (Number.isFinite(v) ? v : 0));
  const max = Math.max(1, ...ys);
  const step = ys.length > 1 ? (width - 2) / (ys.length - 1) : 0;
  const points = ys.map((v, i) => [1 + i * step, height - 1 - (v / max) * (height - 3)]);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const chart = svg("svg", {
    class: "sparkline",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": label,
    focusable: "false",
  });
  const title = svg("title");
  title.textContent = label;
  chart.append(title);
  if (points.length) {
    const last = points[points.length - 1];
    chart.append(
      svg("polygon", { class: "sparkline-area", points: `${points[0][0]},${height - 1} ${line} ${last[0]},${height - 1}` }),
      svg("polyline", { class: "sparkline-line", points: line }),
    );
  }
  return chart;
}
