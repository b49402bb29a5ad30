"""The endpoint page's Metrics tab (uPlot charts of GET /v2/{id}/metrics) and the endpoints
list's sparklines, in a real Chromium against a real gateway. Jobs are run through the
worker protocol by hand (httpx with the endpoint's worker token): 4 completed, 1 failed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_console import DESKTOP, new_page, pytestmark, sign_in  # noqa: F401
from tests.browser.test_requests_tab import _finish
from tests.e2e.conftest import Gateway

PHONE = {"width": 375, "height": 812}
CHARTS = ["requests", "executionMs", "delayMs", "coldStartMs", "coldStarts", "webhooks", "workers"]


@pytest.fixture(scope="module")
def metrics_ep(console_gw: Gateway) -> dict[str, Any]:
    """An endpoint (no managed workers) whose 5 jobs ended: 4 completed, 1 failed."""
    ep = console_gw.create_endpoint(name="measured")
    with console_gw.client() as c:
        for i in range(5):
            c.post(f"/v2/{ep['id']}/run", json={"input": {"i": i}}).raise_for_status()
            body = {"error": "out of memory"} if i == 2 else {"output": {"i": i}}
            _finish(console_gw, ep, body)
        metrics = c.get(f"/v2/{ep['id']}/metrics", params={"interval": "1h"})
        assert metrics.status_code == 200, metrics.text
    return {**ep, "metrics": metrics.json()}


def open_metrics(page: Any, endpoint_id: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"/console/#/endpoint/{endpoint_id}")
    tab = page.get_by_role("tab", name="Metrics")
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("figure.metrics-chart canvas")).to_have_count(len(CHARTS))


def test_metrics_tab_totals_charts_hover_and_interval(
    browser: Any, console_gw: Gateway, metrics_ep: dict[str, Any], shots: Path
):
    from playwright.sync_api import expect

    api_totals = metrics_ep["metrics"]["totals"]
    assert api_totals["requests"]["total"] == 5
    assert api_totals["requests"]["completed"] == 4
    assert api_totals["requests"]["failed"] == 1

    page = new_page(browser, console_gw, DESKTOP)
    sign_in(page, console_gw.admin_key)
    page.get_by_role("heading", name="Endpoints").wait_for()
    page.goto(f"/console/#/endpoint/{metrics_ep['id']}")
    # The stale hint is gone: admins are pointed to the Requests tab.
    expect(page.get_by_text("the Requests tab lists every caller's jobs")).to_be_visible()

    # The Requests tab lists the jobs run: 4 completed, 1 failed.
    page.get_by_role("tab", name="Requests").click()
    rows = page.locator("table.requests tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.filter(has_text="completed")).to_have_count(4)
    expect(rows.filter(has_text="failed")).to_have_count(1)
    retries = sum(int(t) for t in rows.locator("td[data-label='Retries']").all_inner_texts())

    # The Metrics tab's totals say the same (and what the API says).
    open_metrics(page, metrics_ep["id"])
    totals = page.locator("dl.metrics-totals")
    expect(totals.locator("[data-total=total]")).to_have_text(str(rows.count()))
    expect(totals.locator("[data-total=completed]")).to_have_text("4")
    expect(totals.locator("[data-total=failed]")).to_have_text("1")
    expect(totals.locator("[data-total=retried]")).to_have_text(str(retries))
    expect(totals.locator("[data-total=coldStarts]")).to_have_text(
        str(api_totals["coldStarts"]["total"])
    )
    expect(totals.locator("[data-total=webhooksSent]")).to_have_text(
        str(api_totals["webhooks"]["sent"])
    )
    expect(totals.locator("dt")).to_have_text(
        ["Requests", "Completed", "Failed", "Retried", "Cold starts", "Webhooks sent"]
    )

    # Seven charts, each with a caption and a canvas; two columns on a desktop.
    figures = page.locator("figure.metrics-chart")
    expect(figures).to_have_count(len(CHARTS))
    for i, key in enumerate(CHARTS):
        expect(figures.nth(i)).to_have_attribute("data-chart", key)
        expect(figures.nth(i).locator("figcaption")).not_to_be_empty()
        expect(figures.nth(i).locator("canvas")).to_have_count(1)
    first, second = figures.nth(0).bounding_box(), figures.nth(1).bounding_box()
    assert second["x"] > first["x"] + first["width"] / 2 and abs(second["y"] - first["y"]) < 2
    # The requests chart has points; an empty one says so.
    expect(figures.nth(0).locator(".metrics-empty")).to_be_hidden()
    # The fixture's read sampled the worker that ran the jobs (idle): the chart has it.
    expect(page.locator("figure[data-chart=workers] .metrics-empty")).to_be_hidden()
    expect(page.locator("figure[data-chart=webhooks] .metrics-empty")).to_have_text(
        "No data in this interval"
    )

    # Hovering shows each series' value at the cursor in the legend.
    chart = page.locator("figure[data-chart=requests]")
    series = chart.locator(".u-legend .u-series")
    expect(series.nth(1)).to_contain_text("Total")
    chart.locator(".u-over").hover()
    expect(series.nth(1).locator(".u-value")).to_have_text(re.compile(r"^\d+$"))
    expect(series.nth(0).locator(".u-value")).not_to_have_text(re.compile(r"^(—|--)?$"))
    page.screenshot(path=shots / "console-metrics.png", full_page=True)

    # The interval picker: the week holds the same jobs; the choice outlives a reload.
    page.get_by_label("Interval").select_option("1w")
    expect(totals.locator("[data-total=total]")).to_have_text("5")
    page.reload()
    open_metrics(page, metrics_ep["id"])
    expect(page.get_by_label("Interval")).to_have_value("1w")
    page.get_by_label("Interval").select_option("1h")
    expect(totals.locator("[data-total=completed]")).to_have_text("4")
    assert page.errors == []
    page.context.close()


def test_metrics_tab_fits_a_phone_and_follows_dark_mode(
    browser: Any, console_gw: Gateway, metrics_ep: dict[str, Any], shots: Path
):
    from playwright.sync_api import expect

    page = new_page(browser, console_gw, PHONE)
    sign_in(page, console_gw.admin_key)
    page.get_by_role("heading", name="Endpoints").wait_for()
    open_metrics(page, metrics_ep["id"])
    expect(page.locator("[data-total=total]")).to_have_text("5")
    figures = page.locator("figure.metrics-chart")
    first, second = figures.nth(0).bounding_box(), figures.nth(1).bounding_box()
    assert abs(first["x"] - second["x"]) < 1 and second["y"] > first["y"]  # one column
    # The canvas fills its figure (ResizeObserver), and nothing scrolls sideways.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.metrics-plot')].every(p => p.clientWidth > 200"
        " && p.querySelector('canvas').clientWidth === p.clientWidth)"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"

    page.emulate_media(color_scheme="dark")
    expect(page.locator("figure.metrics-chart canvas")).to_have_count(len(CHARTS))
    figures.nth(0).locator(".u-over").hover()
    expect(figures.nth(0).locator(".u-legend .u-series").nth(1).locator(".u-value")).to_have_text(
        re.compile(r"^\d+$")
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways in dark mode: {width} px"
    page.screenshot(path=shots / "console-metrics-phone.png", full_page=True)
    assert page.errors == []
    page.context.close()


def test_a_read_key_gets_the_metrics_tab_and_the_list_a_sparkline(
    browser: Any, console_gw: Gateway, metrics_ep: dict[str, Any]
):
    from playwright.sync_api import expect

    with console_gw.client() as c:
        key = c.post("/v1/keys", json={"scopes": ["read"], "name": "watcher"}).json()["key"]
    page = new_page(browser, console_gw, DESKTOP)
    sign_in(page, key)
    row = page.locator(f"tr[data-endpoint='{metrics_ep['id']}']")
    spark = row.locator("svg.sparkline")
    expect(spark).to_have_attribute("aria-label", "5 requests in the last hour")
    expect(spark.locator("polyline")).to_have_count(1)

    open_metrics(page, metrics_ep["id"])
    expect(page.get_by_role("tab", name="Requests")).to_have_count(0)
    expect(page.locator("[data-total=total]")).to_have_text("5")
    expect(page.locator("[data-total=failed]")).to_have_text("1")
    assert page.errors == []
    page.context.close()
