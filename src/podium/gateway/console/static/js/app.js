// The console's entry point: the session (an API key kept in sessionStorage, for this tab
// only), the hash router and the context every view gets.

import { Api, ApiError } from "./api.js";
import { errorBox, fill, h } from "./dom.js";
import { deployView } from "./views/deploy.js";
import { endpointView } from "./views/endpoint.js";
import { endpointsView } from "./views/endpoints.js";
import { keysView } from "./views/keys.js";
import { signInView } from "./views/signin.js";

const KEY_STORAGE = "podium.apiKey";

const ROUTES = [
  { pattern: /^#\/endpoints$/, view: endpointsView, nav: "endpoints" },
  { pattern: /^#\/deploy$/, view: deployView, nav: "deploy", needs: "admin" },
  { pattern: /^#\/endpoint\/([A-Za-z0-9_-]+)$/, view: endpointView, nav: "endpoints" },
  { pattern: /^#\/keys$/, view: keysView, nav: "keys", needs: "admin" },
];

const session = { api: null, me: null, insecure: false, notice: null };
let current = null; // the shown view: {controller, cleanups}

const main = document.getElementById("main");

/** What the key may do on the endpoints it reaches (an admin key limited to some
 * endpoints administers those). */
function can(scope) {
  return Boolean(session.me && session.me.scopes.includes(scope));
}

/** What the key may do gateway-wide: deploy endpoints, manage keys, list every endpoint. */
function canGateway(scope) {
  return Boolean(session.me && (session.me.gatewayScopes || session.me.scopes).includes(scope));
}

/** Ask the gateway who `key` is; keep it for this tab if it is accepted. */
async function signIn(key) {
  const api = new Api(key, (message) => signOut(`Signed out: ${message}`));
  const me = await new Api(key).get("/v1/me");
  session.api = api;
  session.me = me;
  session.insecure = me.key === null;
  session.notice = null;
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  updateShell();
  return me;
}

function signOut(message = null) {
  sessionStorage.removeItem(KEY_STORAGE);
  session.api = null;
  session.me = null;
  session.notice = message;
  updateShell();
  route();
}

async function refreshMe() {
  session.me = await session.api.get("/v1/me");
  updateShell();
  return session.me;
}

function updateShell() {
  const signedIn = Boolean(session.me);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("session").hidden = !signedIn;
  for (const item of document.querySelectorAll("[data-needs]")) {
    item.hidden = !canGateway(item.dataset.needs);
  }
  if (!signedIn) return;
  const { key, scopes } = session.me;
  const top = scopes.includes("admin") ? "admin" : scopes.includes("run") ? "run" : "read";
  const some = key && key.endpoints && key.endpoints.length ? " (some endpoints)" : "";
  document.getElementById("who").textContent = key
    ? `${key.name} · ${top} key${some}`
    : "no authentication (insecure mode)";
  document.getElementById("signout").hidden = session.insecure;
}

function markNav(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function leaveView() {
  if (!current) return;
  current.controller.abort();
  for (const cleanup of current.cleanups) cleanup();
  current = null;
}

/** What every view gets: the API, the session, its own root element and lifetime. */
function makeContext(root, controller, cleanups) {
  const signal = controller.signal;
  return {
    api: session.api,
    me: session.me,
    can,
    canGateway,
    root,
    signal,
    refreshMe,
    signIn,
    reroute: () => route(),
    onLeave: (fn) => cleanups.push(fn),
    baseUrl: () => (session.me && session.me.publicUrl) || window.location.origin,
    title(text) {
      document.title = `${text} · Podium console`;
    },
    /** Run fn now and every `ms` while the view is shown (paused in background tabs). */
    every(ms, fn) {
      let timer = null;
      const tick = async () => {
        if (signal.aborted) return;
        if (!document.hidden) {
          try {
            await fn();
          } catch (err) {
            if (err.name !== "AbortError") console.warn("podium console: live update", err);
          }
        }
        if (!signal.aborted) timer = setTimeout(tick, ms);
      };
      tick();
      cleanups.push(() => clearTimeout(timer));
    },
  };
}

async function route() {
  const hash = window.location.hash || "#/endpoints";
  if (!hash.startsWith("#/")) return; // an in-page anchor, e.g. the skip link
  leaveView();
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  const root = h("div", { class: "view" });
  fill(main, root);
  const ctx = makeContext(root, controller, cleanups);

  if (!session.me) {
    markNav(null);
    signInView(ctx, session.notice);
    return;
  }
  const match = ROUTES.map((r) => ({ r, m: hash.match(r.pattern) })).find((x) => x.m);
  if (!match) {
    window.location.replace("#/endpoints");
    return;
  }
  markNav(match.r.nav);
  if (match.r.needs && !canGateway(match.r.needs)) {
    const limited = can(match.r.needs) ? " on some endpoints only" : "";
    ctx.title("Not allowed");
    root.append(
      h("h1", { tabindex: "-1" }, "This page needs an admin key"),
      h("p", {}, `You are signed in with a key that has the ${session.me.scopes.join(", ")} ` +
        `scope(s)${limited}. Sign out and sign in with an admin key for every endpoint to ` +
        "deploy endpoints or manage keys."),
      h("p", {}, h("a", { href: "#/endpoints" }, "Back to endpoints")),
    );
    focusHeading(root);
    return;
  }
  try {
    await match.r.view(ctx, ...match.m.slice(1));
  } catch (err) {
    if (err.name === "AbortError" || controller.signal.aborted) return;
    root.append(errorBox(err instanceof ApiError ? err.message : `Something broke: ${err}`));
    console.error(err);
  }
  if (!controller.signal.aborted) focusHeading(root);
}

/** Move focus to the new page's heading, so screen readers announce the page. */
function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading && !root.contains(document.activeElement)) heading.focus({ preventScroll: true });
}

async function boot() {
  document.getElementById("signout").addEventListener("click", () => signOut());
  const key = sessionStorage.getItem(KEY_STORAGE);
  try {
    await signIn(key); // no key: works only on an --insecure-no-auth gateway
  } catch (err) {
    if (key && err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      session.notice = "The saved key is no longer accepted; sign in again.";
    } else if (key) {
      session.notice = err.message;
    }
  }
  window.addEventListener("hashchange", route);
  route();
}

boot();
