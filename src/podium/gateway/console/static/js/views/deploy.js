// Quick Deploy: template (or a container image) → GPU(s) → workers, model or image, network
// volume, endpoint type (queue or load balancer) → Deploy → id, /run (or /lb/) URL, curl
// line.

import { ApiError } from "../api.js";
import { append, codeBlock, errorBox, field, fill, formatMemory, h, notice, uid } from "../dom.js";
import { LOAD_BALANCER, curlLine, isLoadBalancer, lbCurlLine, lbHostUrl, lbUrl, runUrl } from "../snippets.js";

const BUILTIN_CARDS = {
  sd15: {
    title: "Stable Diffusion v1.5",
    text: "Podium's text-to-image worker (RunPod's SD v1 input). Pick a model below.",
    name: "stable-diffusion-v1-5",
  },
  custom: {
    title: "Custom command",
    text: "Any worker program, e.g. an unmodified RunPod SDK handler: python handler.py",
    name: "custom-worker",
  },
};
const IMAGE = "image"; // the card of a container image: no template, `imageName`
const IMAGE_CARD = {
  title: "Container image",
  text: "A worker image, as you would deploy it on RunPod: each worker is a container of it.",
  name: "image-worker",
};

const COMMAND_HINT = "Run in the gateway's working directory, without a shell.";
const LB_HINT = "Requests go straight to your workers' HTTP server (PORT, /ping health check).";
const MODELS = ["auto", "tiny", "sd15-random", "stable-diffusion-v1-5/stable-diffusion-v1-5"];

export async function deployView(ctx) {
  ctx.title("Quick Deploy");
  // Volumes and registries are a gateway-wide admin's: a key limited to some endpoints
  // deploys without them.
  const optional = (path, field) =>
    ctx.api.get(path, { signal: ctx.signal }).then(
      (r) => r[field],
      (err) => {
        if (err instanceof ApiError) return [];
        throw err;
      },
    );
  const [inventory, templates, volumes, registries] = await Promise.all([
    ctx.api.get("/v1/gpus", { signal: ctx.signal }),
    ctx.api.get("/v1/templates", { signal: ctx.signal }),
    optional("/v2/network-volumes", "networkVolumes"),
    optional("/v2/registries", "registries"),
  ]);

  // 1. Template cards, then a container image.
  const card = (value, title, text) =>
    h(
      "label",
      { class: "option-card", "data-template": value },
      h("input", { type: "radio", name: "template", value, checked: value === "sd15" }),
      h("span", { class: "option-body" }, h("strong", {}, title), h("span", { class: "muted-text" }, text)),
    );
  const cards = templates.map((t) => {
    const known = BUILTIN_CARDS[t.id];
    const text = known ? known.text : t.imageName ? `${t.imageName} ${t.command || ""}` : t.command;
    return card(t.id, known ? known.title : t.name, text);
  });
  let engineText = IMAGE_CARD.text;
  if (inventory.containerEngine) engineText += ` Runs on ${inventory.containerEngine}.`;
  else if (inventory.supervisor) engineText += " No container engine was found here (Podman or Docker).";
  cards.push(card(IMAGE, IMAGE_CARD.title, engineText));

  // 2. Hardware: the detected GPUs, or the CPU.
  const gpuCount = h("input", { type: "number", name: "gpuCount", min: 1, max: 16, value: 1, inputmode: "numeric" });
  const gpus = inventory.gpus;
  const hardware = gpus.length
    ? [
        h(
          "div",
          { class: "option-grid" },
          gpus.map((g) =>
            h(
              "label",
              { class: "option-card" },
              h("input", { type: "checkbox", name: "gpu", value: String(g.index) }),
              h(
                "span",
                { class: "option-body" },
                h("strong", {}, `GPU ${g.index}: ${g.name}`),
                h("span", { class: "muted-text" }, `${formatMemory(g.memoryMb)}${g.worker ? ` · in use by ${g.worker}` : " · free"}`),
              ),
            ),
          ),
        ),
        h("p", { class: "hint gpu-hint" }, "None ticked: any free GPU. Ticked: only these."),
        h("div", { class: "grid-3" }, field("GPUs per worker", gpuCount)),
      ]
    : [
        h(
          "div",
          { class: "option-grid" },
          h(
            "label",
            { class: "option-card" },
            h("input", { type: "radio", name: "hardware", value: "cpu", checked: true }),
            h(
              "span",
              { class: "option-body" },
              h("strong", {}, "CPU"),
              h("span", { class: "muted-text" }, "No GPU was found on this machine."),
            ),
          ),
        ),
        inventory.warning ? notice(inventory.warning, "warning") : null,
      ];

  // 3. Settings.
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 191, value: BUILTIN_CARDS.sd15.name });
  const listId = uid("models");
  const model = h("input", { type: "text", name: "model", list: listId, value: "auto", spellcheck: "false" });
  const models = h("datalist", { id: listId }, MODELS.map((m) => h("option", { value: m })));
  const command = h("input", { type: "text", name: "command", spellcheck: "false", placeholder: "python handler.py" });
  const workersMin = h("input", { type: "number", name: "workersMin", min: 0, max: 100, value: 0, inputmode: "numeric" });
  const workersMax = h("input", { type: "number", name: "workersMax", min: 0, max: 100, value: Math.max(1, gpus.length), inputmode: "numeric" });
  const idle = h("input", { type: "number", name: "idleTimeout", min: 0, step: "any", value: 5, inputmode: "decimal" });
  const modelField = field(
    "Model",
    model,
    "auto: a local copy or the Hugging Face hub, else tiny. tiny: random weights, for trying things out. " +
      "Or a Hugging Face repo id, or a path.",
  );
  const commandField = field("Command", command, COMMAND_HINT);
  const image = h("input", { type: "text", name: "imageName", spellcheck: "false", maxlength: 1000, placeholder: "team/worker:1.0" });
  const imageField = field("Image", image, "Pulled once per host unless it is already there.");
  const registry = h(
    "select",
    { name: "containerRegistryAuthId" },
    h("option", { value: "" }, "none (a public image, or one already here)"),
    registries.map((r) => h("option", { value: r.id }, `${r.name} (${r.id})`)),
  );
  const registryField = field("Registry credentials", registry, "For a private image: podium registries create.");
  const volume = h(
    "select",
    { name: "networkVolumeId" },
    h("option", { value: "" }, "none"),
    volumes.map((v) => h("option", { value: v.id }, `${v.name} (${v.id}, ${v.size} GB)`)),
  );
  const volumeField = field("Network volume", volume, "Mounted at /runpod-volume in each worker.");
  // Queue (jobs: /run, /runsync) or load balancer (RunPod's load-balancing endpoints): for
  // the workers that run an HTTP server, not the SD queue worker.
  const typeCard = (value, title, text) =>
    h(
      "label",
      { class: "option-card" },
      h("input", { type: "radio", name: "endpointType", value, checked: value === "QUEUE" }),
      h("span", { class: "option-body" }, h("strong", {}, title), h("span", { class: "muted-text" }, text)),
    );
  const typeField = h(
    "fieldset",
    { class: "endpoint-type" },
    h("legend", {}, "Endpoint type"),
    h(
      "div",
      { class: "option-grid" },
      typeCard("QUEUE", "Queue", "Jobs go to /run and /runsync; workers take them from the queue."),
      typeCard(LOAD_BALANCER, "Load balancer", LB_HINT),
    ),
  );

  const errors = h("div", { class: "form-errors" });
  const submit = h("button", { type: "submit", class: "button" }, "Deploy");
  const form = h(
    "form",
    { class: "deploy", novalidate: false },
    h("fieldset", { class: "step" }, h("legend", {}, "1. Template"), h("div", { class: "option-grid" }, cards)),
    h("fieldset", { class: "step" }, h("legend", {}, gpus.length ? "2. GPUs" : "2. Hardware"), hardware),
    h(
      "fieldset",
      { class: "step" },
      h("legend", {}, "3. Settings"),
      typeField,
      h(
        "div",
        { class: "grid-2" },
        field("Endpoint name", name),
        imageField,
        modelField,
        commandField,
        registryField,
        volumeField,
        models,
      ),
      h(
        "div",
        { class: "grid-3" },
        field("Workers min", workersMin, "Kept running even when idle."),
        field("Workers max", workersMax, "At most this many at once."),
        field("Idle timeout (s)", idle, "An idle worker above the minimum stops after this."),
      ),
    ),
    errors,
    h("div", { class: "actions" }, submit),
  );
  const result = h("section", { class: "card result", hidden: true, "aria-labelledby": "deployed-title" });

  const selected = () => form.querySelector("input[name=template]:checked").value;
  const showTemplateFields = () => {
    const tid = selected();
    modelField.hidden = tid !== "sd15";
    commandField.hidden = tid !== "custom" && tid !== IMAGE;
    command.required = tid === "custom";
    command.placeholder = tid === IMAGE ? "the image's own CMD" : "python handler.py";
    commandField.querySelector(".hint").textContent =
      tid === IMAGE ? "Replaces the image's CMD (split as a shell would, run without one)." : COMMAND_HINT;
    imageField.hidden = registryField.hidden = tid !== IMAGE;
    typeField.hidden = tid === "sd15"; // the SD worker takes jobs from a queue only
    image.required = tid === IMAGE;
    const known = tid === IMAGE ? IMAGE_CARD : BUILTIN_CARDS[tid];
    const defaults = [...Object.values(BUILTIN_CARDS), IMAGE_CARD].map((c) => c.name);
    if (!name.value || defaults.includes(name.value)) name.value = known ? known.name : "endpoint";
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "template") showTemplateFields();
  });
  showTemplateFields();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(errors);
    const tid = selected();
    const body = {
      name: name.value.trim(),
      workersMin: Number(workersMin.value),
      workersMax: Number(workersMax.value),
      idleTimeout: Number(idle.value),
    };
    if (tid === IMAGE) {
      body.imageName = image.value.trim();
      if (registry.value) body.containerRegistryAuthId = registry.value;
    } else {
      body.templateId = tid;
    }
    if (tid === "sd15" && model.value.trim()) body.model = model.value.trim();
    if ((tid === "custom" || tid === IMAGE) && command.value.trim()) body.command = command.value.trim();
    if (volume.value) body.networkVolumeId = volume.value;
    const type = form.querySelector("input[name=endpointType]:checked").value;
    if (!typeField.hidden && type === LOAD_BALANCER) body.type = LOAD_BALANCER;
    if (gpus.length) {
      body.gpuIds = [...form.querySelectorAll("input[name=gpu]:checked")].map((c) => c.value).join(",");
      body.gpuCount = Number(gpuCount.value);
    }
    submit.disabled = true;
    submit.textContent = "Deploying…";
    try {
      const endpoint = await ctx.api.post("/v1/endpoints", body, { signal: ctx.signal });
      showResult(ctx, result, endpoint, inventory.supervisor);
      form.hidden = true;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(errors, errorBox(`Not deployed: ${err.message}`));
    } finally {
      submit.disabled = false;
      submit.textContent = "Deploy";
    }
  });

  append(ctx.root, [
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Quick Deploy"),
    ),
    h("p", { class: "lead" }, "Pick a template and the hardware, then deploy: the gateway starts the workers itself."),
    inventory.supervisor
      ? null
      : notice(
          "This gateway runs no supervisor (--no-supervisor): it will not start workers. " +
            "Start them yourself with the worker token shown after deploying.",
          "warning",
        ),
    form,
    result,
  ]);
}

function showResult(ctx, section, endpoint, supervised) {
  const base = ctx.baseUrl();
  const lb = isLoadBalancer(endpoint);
  const hostUrl = lb ? lbHostUrl(base, endpoint.id) : null;
  const heading = h("h2", { id: "deployed-title", tabindex: "-1" }, `Deployed: ${endpoint.name}`);
  fill(
    section,
    heading,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Endpoint id"),
      h("dd", {}, h("code", { class: "endpoint-id" }, endpoint.id)),
      h("dt", {}, "Type"),
      h("dd", { class: "endpoint-type" }, lb ? "Load balancer" : "Queue"),
      lb
        ? [
            h("dt", {}, "URL"),
            h("dd", {}, h("code", { class: "lb-url" }, lbUrl(base, endpoint.id)), h("span", { class: "muted-text" }, " + your server's path")),
            hostUrl ? [h("dt", {}, "Host form"), h("dd", {}, h("code", { class: "lb-host-url" }, hostUrl))] : null,
          ]
        : [h("dt", {}, "Run URL"), h("dd", {}, h("code", { class: "run-url" }, runUrl(base, endpoint.id)))],
    ),
    h("h3", {}, "Try it"),
    h(
      "p",
      {},
      "Set PODIUM_API_KEY to a key with the run scope (",
      h("a", { href: "#/keys" }, "API keys"),
      "), then:",
    ),
    codeBlock(lb ? lbCurlLine(base, endpoint) : curlLine(base, endpoint), "curl command"),
    supervised
      ? h(
          "p",
          { class: "muted-text" },
          `Workers start when ${lb ? "requests" : "jobs"} arrive (or now, if Workers min is above 0).`,
        )
      : null,
    h(
      "details",
      {},
      h("summary", {}, "Worker token (shown once; only for workers you start yourself)"),
      codeBlock(endpoint.workerToken, "worker token"),
    ),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: `#/endpoint/${endpoint.id}` }, lb ? "Open endpoint and test request" : "Open endpoint and playground"),
      h("a", { class: "button secondary", href: "#/endpoints" }, "All endpoints"),
    ),
  );
  section.hidden = false;
  heading.focus();
}
