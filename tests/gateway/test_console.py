"""The console's files are served by the gateway at /console/, with strict headers."""

from __future__ import annotations

import re

from podium.gateway.console import STATIC_DIR


async def test_root_and_bare_console_path_redirect_to_the_console(api):
    r = await api.http.get("/")
    assert r.status_code in (302, 307) and r.headers["location"] == "/console/"
    r = await api.http.get("/console")
    assert r.status_code in (302, 307) and r.headers["location"] == "/console/"


async def test_the_page_is_served_without_a_key_with_strict_headers(api):
    r = await api.http.get("/console/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"


async def test_every_asset_the_page_names_exists_and_has_its_type(api):
    page = (await api.http.get("/console/")).text
    assets = re.findall(r'(?:src|href)="((?!/|#|https?:)[^"]+)"', page)
    assert {"style.css", "js/app.js", "favicon.svg"} <= set(assets)
    types = {".css": "text/css", ".js": "javascript", ".svg": "image/svg+xml"}
    for asset in assets:
        r = await api.http.get(f"/console/{asset}")
        assert r.status_code == 200, asset
        assert types[asset[asset.rindex(".") :]] in r.headers["content-type"], asset


async def test_every_module_import_resolves_to_a_shipped_file():
    """No build step: the browser loads these paths as written (and nothing from a CDN)."""
    scripts = sorted(STATIC_DIR.glob("js/**/*.js"))
    assert scripts
    loaded_on_demand = 0
    for script in scripts:
        text = script.read_text()
        assert not re.search(r"""(import|from)\s*\(?\s*["'](https?:)?//""", text), script.name
        static = re.findall(r'^import .* from "(\.[^"]+)";$', text, re.M)
        dynamic = re.findall(r'import\(\s*"(\.[^"]+)"\s*\)', text)  # e.g. uPlot, on demand
        loaded_on_demand += len(dynamic)
        for target in static + dynamic:
            assert (script.parent / target).resolve().is_file(), f"{script.name}: {target}"
    assert loaded_on_demand  # the Metrics tab's uPlot: the check sees dynamic imports


async def test_unknown_console_files_are_404(api):
    assert (await api.http.get("/console/nope.js")).status_code == 404
