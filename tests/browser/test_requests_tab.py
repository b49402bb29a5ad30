"""The endpoint page's Requests tab (job history) in a real Chromium against a real
gateway. Jobs are run through the worker protocol by hand (httpx with the endpoint's
worker token), so the history holds completed, failed and queued jobs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.test_console import DESKTOP, new_page, pytestmark, sign_in  # noqa: F401
from tests.e2e.conftest import Gateway


def _finish(gw: Gateway, ep: dict[str, Any], body: dict[str, Any]) -> str:
    worker = {"Authorization": ep["workerToken"]}
    with httpx.Client(base_url=f"{gw.url}/v2/{ep['id']}", timeout=10) as w:
        r = w.get("/job-take/bw1?hold=1", headers=worker)
        assert r.status_code == 200, r.text
        job_id = r.json()["id"]
        assert w.post(f"/job-done/bw1/{job_id}", json=body, headers=worker).status_code == 200
        return job_id


@pytest.fixture(scope="module")
def history_ep(console_gw: Gateway) -> dict[str, Any]:
    """An endpoint (no managed workers) with 22 completed, 1 failed and 2 queued jobs."""
    ep = console_gw.create_endpoint(name="history")
    ids: dict[str, Any] = {"completed": [], "queued": []}
    with console_gw.client() as c:
        for i in range(23):
            c.post(f"/v2/{ep['id']}/run", json={"input": {"i": i}}).raise_for_status()
            if i == 11:
                ids["failed"] = _finish(console_gw, ep, {"error": "the model ran out of memory"})
            else:
                ids["completed"].append(_finish(console_gw, ep, {"output": {"i": i}}))
        for i in range(2):
            r = c.post(f"/v2/{ep['id']}/run", json={"input": {"queued": i}})
            ids["queued"].append(r.json()["id"])
    return {**ep, "jobs": ids}


def test_requests_tab_lists_filters_pages_and_opens_jobs(
    browser: Any, console_gw: Gateway, history_ep: dict[str, Any], shots: Path
):
    from playwright.sync_api import expect

    page = new_page(browser, console_gw, DESKTOP)
    sign_in(page, console_gw.admin_key)
    page.get_by_role("heading", name="Endpoints").wait_for()
    page.goto(f"/console/#/endpoint/{history_ep['id']}")
    tab = page.get_by_role("tab", name="Requests")
    expect(page.get_by_role("tab", name="Playground")).to_have_attribute("aria-selected", "true")
    # Keyboard: the arrow key moves to the Requests tab and opens it.
    page.get_by_role("tab", name="Playground").focus()
    page.keyboard.press("ArrowRight")
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(tab).to_be_focused()
    rows = page.locator("table.requests tbody tr")
    expect(rows).to_have_count(20)  # one page
    queued = history_ep["jobs"]["queued"]
    expect(rows.first).to_have_attribute("data-job", queued[1])  # newest first
    expect(rows.first).to_contain_text("in queue")
    page.screenshot(path=shots / "console-requests.png", full_page=True)

    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(25)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()

    page.get_by_label("Status", exact=True).select_option("FAILED")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    failed = history_ep["jobs"]["failed"]
    expect(rows.first).to_have_attribute("data-job", failed)
    expect(rows.first).to_contain_text("the model ran out of memory")
    expect(rows.first).to_contain_text("bw1")

    page.get_by_role("button", name=f"Open job {failed}").click()
    detail = page.locator(".requests-detail pre.code")
    expect(detail).to_contain_text('"status": "FAILED"')
    expect(detail).to_contain_text(failed)

    page.get_by_label("Status", exact=True).select_option("")
    page.get_by_label("Created before").fill("2001-01-01T00:00:00")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".requests-empty")).to_have_text(re.compile("No requests match"))
    assert page.errors == []
    page.context.close()


def test_keys_below_admin_get_no_requests_tab(
    browser: Any, console_gw: Gateway, history_ep: dict[str, Any]
):
    from playwright.sync_api import expect

    with console_gw.client() as c:
        key = c.post("/v1/keys", json={"scopes": ["run"], "name": "runner"}).json()["key"]
    page = new_page(browser, console_gw, DESKTOP)
    sign_in(page, key)
    page.goto(f"/console/#/endpoint/{history_ep['id']}")
    page.get_by_role("heading", name="history").wait_for()
    expect(page.get_by_role("tab", name="Requests")).to_have_count(0)
    with console_gw.client(key) as c:
        assert c.get(f"/v2/{history_ep['id']}/requests").status_code == 403
    assert page.errors == []
    page.context.close()
