// The playground: a form for the SD input (or raw JSON for other workers) → /run → follow
// /status?wait=1000 (live status, per-step progress) → images with seeds and downloads.

import { ApiError } from "../api.js";
import { codeBlock, errorBox, field, fill, formatMs, h, statusBadge } from "../dom.js";
import { isFinal, rememberJob, updateJob } from "../jobs.js";
import { TUTORIAL_PROMPT } from "../snippets.js";

const SCHEDULERS = [
  "K-LMS", "DDIM", "DDPM", "PNDM", "EULER-D", "EULER-A", "HEUN", "KDPM2-D", "KDPM2-A",
  "DPM-M", "DPM++ 2M Karras", "DPM-S", "IPNDM", "UniPC",
];
const STATUS_WAIT_MS = 1000;

function numberInput(name, value, attrs = {}) {
  return h("input", { type: "number", name, value, inputmode: "numeric", ...attrs });
}

/** The SD form; returns {element, input()} where input() builds the job's `input`. */
function sdForm() {
  const prompt = h("textarea", { name: "prompt", rows: 2, required: true }, TUTORIAL_PROMPT);
  const negative = h("textarea", { name: "negative_prompt", rows: 2, placeholder: "blurry, low quality" });
  const width = numberInput("width", 512, { min: 64, max: 1024, step: 8 });
  const height = numberInput("height", 512, { min: 64, max: 1024, step: 8 });
  const steps = numberInput("num_inference_steps", 50, { min: 1, max: 500 });
  const guidance = numberInput("guidance_scale", 7.5, { min: 0, max: 20, step: 0.5, inputmode: "decimal" });
  const scheduler = h("select", { name: "scheduler" }, SCHEDULERS.map((s) => h("option", { value: s }, s)));
  const seed = numberInput("seed", "", { min: 0, max: 4294967295, placeholder: "random" });
  const outputs = numberInput("num_outputs", 1, { min: 1, max: 10 });
  const element = h(
    "div",
    { class: "sd-form" },
    field("Prompt", prompt),
    field("Negative prompt", negative),
    h(
      "div",
      { class: "grid-4" },
      field("Width", width),
      field("Height", height),
      field("Steps", steps),
      field("Guidance scale", guidance),
    ),
    h(
      "div",
      { class: "grid-3" },
      field("Scheduler", scheduler),
      field("Seed", seed, "Empty: random. Image i uses seed + i."),
      field("Number of images", outputs),
    ),
  );
  const input = () => {
    const body = {
      prompt: prompt.value,
      width: Number(width.value),
      height: Number(height.value),
      num_inference_steps: Number(steps.value),
      guidance_scale: Number(guidance.value),
      scheduler: scheduler.value,
      num_outputs: Number(outputs.value),
    };
    if (negative.value.trim()) body.negative_prompt = negative.value;
    if (seed.value !== "") body.seed = Number(seed.value);
    return body;
  };
  return { element, input };
}

/** Raw JSON input, for endpoints that do not run the SD worker. */
function jsonForm() {
  const area = h("textarea", { name: "input", rows: 8, spellcheck: "false", class: "mono" }, "{}");
  const element = field("Input (JSON)", area, 'The job\'s "input" object, as your worker expects it.');
  const input = () => {
    try {
      return JSON.parse(area.value);
    } catch (err) {
      throw new ApiError(400, `The input is not valid JSON: ${err.message}`);
    }
  };
  return { element, input };
}

/** Long base64 strings shortened, so the raw JSON stays readable. */
function shortened(value) {
  return JSON.stringify(
    value,
    (key, v) => (typeof v === "string" && v.length > 200 ? `${v.slice(0, 60)}… (${v.length} characters)` : v),
    2,
  );
}

function pngBlob(base64) {
  const data = base64.startsWith("data:") ? base64.slice(base64.indexOf(",") + 1) : base64;
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

function isImageList(output) {
  return Array.isArray(output) && output.length > 0 && output.every((o) => o && typeof o.image === "string");
}

export function playground(ctx, endpoint) {
  const epId = endpoint.id;
  const form = endpoint.templateId === "sd15" ? sdForm() : jsonForm();
  const runButton = h("button", { type: "submit", class: "button" }, "Run");
  const cancelButton = h("button", { type: "button", class: "button secondary", disabled: true }, "Cancel");
  const statusLine = h("div", { class: "job-status", role: "status", "aria-live": "polite" });
  const progress = h("progress", { class: "progress", max: 1, hidden: true, "aria-label": "Progress" });
  const progressText = h("span", { class: "progress-text" });
  const problems = h("div");
  const images = h("div", { class: "images" });
  const other = h("div");
  const rawRequest = h("pre", { class: "code", tabindex: "0", "aria-label": "Request" });
  const rawResponse = h("pre", { class: "code", tabindex: "0", "aria-label": "Response" });
  const raw = h(
    "details",
    { class: "raw", hidden: true },
    h("summary", {}, "Raw request and response (JSON)"),
    h("h4", {}, "Request"),
    rawRequest,
    h("h4", {}, "Response (latest status; image data shortened)"),
    rawResponse,
  );
  const formEl = h(
    "form",
    { class: "playground-form" },
    form.element,
    h("div", { class: "actions" }, runButton, cancelButton),
  );
  const element = h(
    "section",
    { class: "card playground", "aria-labelledby": "playground-title" },
    h("h2", { id: "playground-title" }, "Playground"),
    formEl,
    h("div", { class: "run-state" }, statusLine, h("div", { class: "progress-row" }, progress, progressText)),
    problems,
    images,
    other,
    raw,
  );

  let blobUrls = [];
  let runToken = 0; // a newer run (or a shown result) stops following an older job
  let currentJob = null;
  ctx.onLeave(() => blobUrls.forEach((u) => URL.revokeObjectURL(u)));

  function showProgress(status) {
    const out = status.output;
    if (status.status === "IN_PROGRESS" && out && Number.isFinite(out.step) && Number.isFinite(out.steps)) {
      progress.hidden = false;
      progress.max = out.steps;
      progress.value = out.step;
      progressText.textContent = `Step ${out.step} of ${out.steps}`;
    } else if (status.status === "COMPLETED") {
      progress.hidden = false;
      progress.max = 1;
      progress.value = 1;
      progressText.textContent = "Done";
    } else if (status.status === "IN_QUEUE" || status.status === "IN_PROGRESS") {
      progress.hidden = false;
      progress.removeAttribute("value"); // indeterminate
      progressText.textContent = status.status === "IN_QUEUE" ? "Waiting for a worker…" : "Running…";
    } else {
      progress.hidden = true;
      progressText.textContent = "";
    }
  }

  function showStatus(status) {
    const parts = [];
    if (status.delayTime !== undefined) parts.push(`delay ${formatMs(status.delayTime)}`);
    if (status.executionTime !== undefined) parts.push(`execution ${formatMs(status.executionTime)}`);
    if (status.workerId) parts.push(`worker ${status.workerId}`);
    fill(
      statusLine,
      h("span", { class: "mono" }, status.id),
      " ",
      statusBadge(status.status),
      parts.length ? h("span", { class: "muted-text" }, ` ${parts.join(" · ")}`) : null,
    );
    statusLine.dataset.status = status.status;
    showProgress(status);
    rawResponse.textContent = shortened(status);
    raw.hidden = false;
  }

  function showOutput(status) {
    blobUrls.forEach((u) => URL.revokeObjectURL(u));
    blobUrls = [];
    fill(images);
    fill(other);
    if (status.status === "FAILED" || status.status === "TIMED_OUT") {
      fill(problems, errorBox(`The job ${status.status === "FAILED" ? "failed" : "timed out"}: ${status.error || "no error message"}`));
      return;
    }
    if (status.status !== "COMPLETED") return;
    if (isImageList(status.output)) {
      status.output.forEach((item, i) => {
        const url = URL.createObjectURL(pngBlob(item.image));
        blobUrls.push(url);
        const seedText = item.seed !== undefined ? `seed ${item.seed}` : `image ${i + 1}`;
        const img = h("img", { src: url, alt: `Generated image ${i + 1}, ${seedText}`, decoding: "async" });
        img.addEventListener("load", () => {
          img.classList.toggle("pixelated", img.naturalWidth < 256);
          size.textContent = ` · ${img.naturalWidth}×${img.naturalHeight}`;
        });
        const size = h("span", { class: "muted-text" });
        images.append(
          h(
            "figure",
            { class: "image-result" },
            img,
            h(
              "figcaption",
              {},
              h("span", { class: "seed" }, item.seed !== undefined ? `Seed ${item.seed}` : `Image ${i + 1}`),
              size,
              h(
                "a",
                { class: "button small secondary", href: url, download: `podium-${status.id}-${item.seed ?? i}.png` },
                "Download PNG",
              ),
            ),
          ),
        );
      });
    } else if (status.output !== undefined) {
      other.append(h("h3", {}, "Output"), codeBlock(shortened(status.output), "output"));
    }
  }

  async function follow(jobId, token) {
    let failures = 0;
    while (!ctx.signal.aborted && token === runToken) {
      let status;
      try {
        status = await ctx.api.get(`/v2/${epId}/status/${jobId}?wait=${STATUS_WAIT_MS}`, { signal: ctx.signal });
        failures = 0;
      } catch (err) {
        if (err.name === "AbortError") return;
        failures += 1;
        if (err.status === 404 || err.status === 401 || err.status === 403 || failures > 5) {
          fill(problems, errorBox(`Lost track of job ${jobId}: ${err.message}`));
          if (err.status === 404) updateJob(epId, jobId, null, true);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (token !== runToken) return;
      showStatus(status);
      updateJob(epId, jobId, status);
      if (isFinal(status.status)) {
        showOutput(status);
        return;
      }
    }
  }

  function finished() {
    runButton.disabled = false;
    cancelButton.disabled = true;
    currentJob = null;
  }

  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problems);
    let body;
    try {
      body = { input: form.input() };
    } catch (err) {
      fill(problems, errorBox(err.message));
      return;
    }
    runToken += 1;
    const token = runToken;
    runButton.disabled = true;
    fill(images);
    fill(other);
    rawRequest.textContent = `POST /v2/${epId}/run\n${JSON.stringify(body, null, 2)}`;
    fill(statusLine, "Submitting…");
    progress.hidden = true;
    progressText.textContent = "";
    try {
      const queued = await ctx.api.post(`/v2/${epId}/run`, body, { signal: ctx.signal });
      currentJob = queued.id;
      cancelButton.disabled = false;
      rememberJob(epId, queued.id, queued.status);
      showStatus(queued);
      await follow(queued.id, token);
    } catch (err) {
      if (err.name === "AbortError") return;
      fill(statusLine);
      fill(problems, errorBox(`Not run: ${err.message}`));
    } finally {
      if (token === runToken) finished();
    }
  });

  cancelButton.addEventListener("click", async () => {
    if (!currentJob) return;
    try {
      await ctx.api.post(`/v2/${epId}/cancel/${currentJob}`, {}, { signal: ctx.signal });
    } catch (err) {
      if (err.name !== "AbortError") fill(problems, errorBox(`Not cancelled: ${err.message}`));
    }
  });

  /** Show a remembered job's current status and result (from the recent jobs table). */
  async function show(jobId) {
    runToken += 1;
    const token = runToken;
    finished();
    fill(problems);
    rawRequest.textContent = "(sent earlier; requests are not kept)";
    element.scrollIntoView({ block: "start" });
    try {
      const status = await ctx.api.get(`/v2/${epId}/status/${jobId}`, { signal: ctx.signal });
      showStatus(status);
      updateJob(epId, jobId, status);
      if (isFinal(status.status)) showOutput(status);
      else {
        currentJob = jobId;
        runButton.disabled = true;
        cancelButton.disabled = false;
        await follow(jobId, token);
        if (token === runToken) finished();
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err.status === 404) updateJob(epId, jobId, null, true);
      fill(problems, errorBox(err.message));
    }
  }

  return { element, show };
}
