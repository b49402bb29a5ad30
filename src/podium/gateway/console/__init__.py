"""The web console, served by the gateway itself at `/console/` (and `/` redirects there).

What it is: one HTML page, one CSS file and a few vanilla ES modules in `static/`, talking
to the same public APIs as every other client (`/v1/me` to sign in, `/v1/*` for admin
work, `/v2/{endpoint}/*` for jobs and health). Hash routes: `#/endpoints`, `#/deploy`,
`#/endpoint/ID`, `#/keys`.

    static/index.html        the shell: header, navigation, <main>
    static/style.css         all the styling (light and dark, phone to desktop)
    static/js/app.js         session, hash router, the context each view gets
    static/js/api.js         fetch wrapper: JSON in and out, errors as ApiError
    static/js/views/*.js     one module per page: signin, endpoints, deploy, endpoint
                             (+ playground, requests, metrics), keys
    static/vendor/uplot/     uPlot 1.6.32 (MIT, its LICENSE beside it) for the Metrics
                             tab's charts, loaded only when that tab opens;
                             tools/vendor-uplot.sh fetches it by version and checksum

Why this stack: the console is a thin view over a JSON API that already exists, and its
live parts (health every 2 s, job progress by long-poll) need JavaScript anyway, so
server-rendered templates would add a second rendering path without removing the
scripts. Plain ES modules need no build step and no framework: the one vendored library,
uPlot for the charts, is a single checked-in file, so every byte ships in the wheel as
it is (hatch packs everything under src/podium), works offline, and a reader can open
any file and see what the browser runs. About 125 KB of our own code (35 KB gzipped)
plus 54 KB of uPlot (24 KB gzipped).

Security: the API key lives in the tab's sessionStorage only and goes out as an
`Authorization` header (never a cookie, so no CSRF); the pages carry a strict
Content-Security-Policy (only this origin's scripts and styles, no inline code, no frames).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONSOLE_PATH", "STATIC_DIR", "mount"]

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).parent / "static"

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (a cheap 304 by ETag), so an upgraded gateway serves new files.
    "Cache-Control": "no-cache",
}


class _ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    """Serve the console at CONSOLE_PATH + "/" (the bare path redirects there)."""

    @app.get(CONSOLE_PATH, include_in_schema=False)
    async def console_root() -> Response:
        return RedirectResponse(CONSOLE_PATH + "/")

    app.mount(CONSOLE_PATH, _ConsoleFiles(directory=STATIC_DIR, html=True), name="console")
