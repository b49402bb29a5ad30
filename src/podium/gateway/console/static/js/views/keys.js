// API keys: create (the key is shown once, with a copy button), list, revoke.

import { ApiError } from "../api.js";
import { append, copyText, errorBox, field, fill, formatTime, h, notice } from "../dom.js";

const ACCESS = [
  ["read", "Read", "status, stream and health of jobs"],
  ["run", "Run", "read, plus submit, cancel and retry jobs"],
  ["admin", "Admin", "everything: endpoints, keys, this console"],
];

export async function keysView(ctx) {
  ctx.title("API keys");
  const endpoints = await ctx.api.get("/v1/endpoints", { signal: ctx.signal });
  const list = h("div");
  const created = h("div");

  // Create.
  const name = h("input", { type: "text", name: "keyName", required: true, maxlength: 191, value: "my-app" });
  const access = h(
    "fieldset",
    { class: "inline-options" },
    h("legend", {}, "Access"),
    ACCESS.map(([scope, label, text]) =>
      h(
        "label",
        { class: "inline-option" },
        h("input", { type: "radio", name: "scope", value: scope, checked: scope === "run" }),
        h("span", {}, h("strong", {}, label), h("span", { class: "muted-text" }, ` — ${text}`)),
      ),
    ),
  );
  const limit = endpoints.length
    ? h(
        "fieldset",
        { class: "inline-options" },
        h("legend", {}, "Endpoints (none ticked: all)"),
        endpoints.map((e) =>
          h(
            "label",
            { class: "inline-option" },
            h("input", { type: "checkbox", name: "endpoint", value: e.id }),
            h("span", {}, `${e.name} `, h("code", {}, e.id)),
          ),
        ),
      )
    : null;
  const errors = h("div");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-key-title" },
    h("h2", { id: "create-key-title" }, "Create a key"),
    field("Name", name, "To recognise the key later, e.g. the app that uses it."),
    access,
    limit,
    errors,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Create key")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(errors);
    const body = {
      name: name.value.trim(),
      scopes: [form.querySelector("input[name=scope]:checked").value],
      endpoints: [...form.querySelectorAll("input[name=endpoint]:checked")].map((c) => c.value),
    };
    try {
      const key = await ctx.api.post("/v1/keys", body, { signal: ctx.signal });
      showCreated(key);
      await refresh();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(errors, errorBox(`Not created: ${err.message}`));
    }
  });

  function showCreated(key) {
    const value = h("input", { type: "text", readonly: true, value: key.key, class: "mono new-key", spellcheck: "false" });
    const feedback = h("span", { class: "copy-feedback", role: "status" });
    const heading = h("h2", { id: "new-key-title", tabindex: "-1" }, `New key: ${key.name}`);
    fill(
      created,
      h(
        "section",
        { class: "card highlight", "aria-labelledby": "new-key-title" },
        heading,
        notice("Copy it now: it is shown only this once. The gateway keeps only its hash.", "warning"),
        h("label", { for: "new-key-value", id: "new-key-label" }, "API key"),
        h(
          "div",
          { class: "copy-row" },
          Object.assign(value, { id: "new-key-value" }),
          h(
            "button",
            {
              type: "button",
              class: "button secondary",
              onclick: async () => {
                value.select();
                feedback.textContent = (await copyText(key.key)) ? "Copied" : "Press Ctrl+C to copy";
              },
            },
            "Copy key",
          ),
          feedback,
        ),
        h("div", { class: "actions" }, h("button", { type: "button", class: "button small secondary", onclick: () => fill(created) }, "Done, hide it")),
      ),
    );
    heading.focus();
  }

  async function refresh() {
    const keys = await ctx.api.get("/v1/keys", { signal: ctx.signal });
    const mine = ctx.me.key && ctx.me.key.id;
    fill(
      list,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table responsive keys" },
          h("caption", { class: "visually-hidden" }, "API keys"),
          h("thead", {}, h("tr", {}, ["Name", "Key", "Access", "Endpoints", "Created", "Status"].map((t) => h("th", { scope: "col" }, t)), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
          h(
            "tbody",
            {},
            keys.map((k) =>
              h(
                "tr",
                { "data-key": k.id, class: k.revoked ? "revoked" : null },
                h("th", { scope: "row", "data-label": "Name" }, k.name, k.id === mine ? h("span", { class: "muted-text" }, " (this tab)") : null),
                h("td", { "data-label": "Key", class: "mono" }, `${k.prefix}…`),
                h("td", { "data-label": "Access" }, k.scopes.join(", ")),
                h("td", { "data-label": "Endpoints" }, k.endpoints.length ? k.endpoints.join(", ") : "all"),
                h("td", { "data-label": "Created" }, formatTime(k.createdAt)),
                h("td", { "data-label": "Status" }, k.revoked ? h("span", { class: "badge bad" }, "revoked") : h("span", { class: "badge ok" }, "active")),
                h("td", {}, k.revoked || k.id === mine ? null : revokeButton(k)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function revokeButton(key) {
    return h(
      "button",
      {
        type: "button",
        class: "button small danger",
        "aria-label": `Revoke ${key.name} (${key.prefix}…)`,
        onclick: async () => {
          if (!window.confirm(`Revoke the key ${key.name} (${key.prefix}…)? Requests with it will fail with 401.`)) return;
          try {
            await ctx.api.delete(`/v1/keys/${key.id}`);
          } catch (err) {
            fill(errors, errorBox(`Not revoked: ${err.message}`));
          }
          await refresh();
        },
      },
      "Revoke",
    );
  }

  append(ctx.root, [
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "API keys")),
    h("p", { class: "lead" }, "Keys for clients of the API. Send one as Authorization: Bearer <key>."),
    created,
    h("section", { class: "keys-list", "aria-labelledby": "keys-title" }, h("h2", { id: "keys-title" }, "Keys"), list),
    form,
  ]);
  await refresh();
}
