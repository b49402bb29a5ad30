// Small DOM helpers: build elements, label form fields, copy text, format numbers.

let nextId = 0;

/** A fresh id for label/input pairs. */
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** h("a", {href: "#/x", class: "link", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace el's children. */
export function fill(el, ...children) {
  return append(clear(el), children);
}

/** A labelled field: <div class="field"><label for=id>…</label>control<p hint></div>. */
export function field(label, control, hint = null) {
  if (!control.id) control.id = uid();
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** Copy text to the clipboard, with a fallback for plain-http pages (no Clipboard API). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the old way
    }
  }
  const area = h("textarea", { class: "offscreen", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A "Copy" button for text (a string or a function returning one). */
export function copyButton(text, label = "Copy") {
  const feedback = h("span", { class: "copy-feedback", role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "button small secondary",
      onclick: async () => {
        const ok = await copyText(typeof text === "function" ? text() : text);
        feedback.textContent = ok ? "Copied" : "Select the text and copy it";
        setTimeout(() => (feedback.textContent = ""), 2500);
      },
    },
    label,
  );
  return h("span", { class: "copy" }, button, feedback);
}

/** A labelled, copyable code block. */
export function codeBlock(text, label) {
  const pre = h("pre", { class: "code", tabindex: "0", "aria-label": label }, h("code", {}, text));
  return h("div", { class: "code-block" }, pre, copyButton(text, `Copy ${label}`));
}

export function errorBox(message) {
  return h("div", { class: "alert error", role: "alert" }, message);
}

export function notice(message, kind = "info") {
  return h("div", { class: `alert ${kind}` }, message);
}

/** Milliseconds for people: 850 ms, 4.2 s, 3 min 5 s. */
export function formatMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatTime(epochSeconds) {
  if (!epochSeconds) return "—";
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function formatMemory(mb) {
  return mb >= 1000 ? `${(mb / 1024).toFixed(mb % 1024 ? 1 : 0)} GiB` : `${mb} MiB`;
}

const STATUS_CLASS = {
  IN_QUEUE: "queued",
  IN_PROGRESS: "running",
  COMPLETED: "ok",
  FAILED: "bad",
  TIMED_OUT: "bad",
  CANCELLED: "muted",
};

/** A job status as a badge (text first: colour is never the only signal). */
export function statusBadge(status) {
  const label = (status || "UNKNOWN").replace("_", " ").toLowerCase();
  return h("span", { class: `badge ${STATUS_CLASS[status] || "muted"}` }, label);
}
