// Sign in with an API key. The key is checked against GET /v1/me and kept in this tab's
// sessionStorage only: closing the tab forgets it.

import { ApiError } from "../api.js";
import { errorBox, field, fill, h, notice } from "../dom.js";

export function signInView(ctx, message = null) {
  ctx.title("Sign in");
  const input = h("input", {
    type: "password",
    name: "apiKey",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "pk_…",
  });
  const errors = h("div", { class: "form-errors" });
  const button = h("button", { type: "submit", class: "button" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in to Podium"),
    message ? notice(message, "warning") : null,
    field(
      "API key",
      input,
      "The admin key was printed once at the gateway's first start and is in " +
        "DATA_DIR/admin.key. The key stays in this browser tab only.",
    ),
    errors,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    button.textContent = "Signing in…";
    fill(errors);
    try {
      await ctx.signIn(key);
    } catch (err) {
      const text =
        err instanceof ApiError && err.status === 401
          ? "That API key was not accepted: it is unknown or has been revoked."
          : err.message;
      fill(errors, errorBox(text));
      input.setAttribute("aria-invalid", "true");
      button.disabled = false;
      button.textContent = "Sign in";
      input.focus();
      input.select();
      return;
    }
    const hash = window.location.hash;
    if (!hash.startsWith("#/") || hash === "#/signin") window.location.hash = "#/endpoints";
    else ctx.reroute();
  });
  ctx.root.append(form);
  input.focus();
}
