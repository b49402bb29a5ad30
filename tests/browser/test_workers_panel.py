"""The endpoint page's Workers list (GET /v1/endpoints/{id}/workers) in a real Chromium
against a real gateway: a worker the fleet runs (a real process) shows its state, GPUs
and the job it holds, live; a worker started by hand shows up beside it; a read key sees
the workers but not the job ids."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.browser.test_console import DESKTOP, new_page, pytestmark, sign_in  # noqa: F401
from tests.e2e.conftest import Gateway

REPO = Path(__file__).resolve().parents[2]
# Reports step 1, then holds the job until the test creates the job's `go` file.
HOLDS = f"{sys.executable} -m podium.worker {REPO / 'tests/e2e/handlers/basic.py'}:progress"


@contextmanager
def hand_worker(gw: Gateway, ep: dict[str, Any], worker_id: str) -> Iterator[None]:
    """A worker started elsewhere, as far as the gateway can tell: it pings with the
    endpoint's token every 0.3 s (its lease is 3 s) until the block ends (at most 60 s)."""
    stop = threading.Event()

    def ping() -> None:
        with httpx.Client(base_url=f"{gw.url}/v2/{ep['id']}", timeout=5) as c:
            for _ in range(200):
                c.get(f"/ping/{worker_id}?gpu=cpu", headers={"Authorization": ep["workerToken"]})
                if stop.wait(0.3):
                    return

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_workers_list_shows_state_gpus_and_job_live(
    browser: Any, console_gw: Gateway, tmp_path: Path, shots: Path
):
    from playwright.sync_api import expect

    ep = console_gw.create_endpoint(
        name="workers-panel", templateId="custom", command=HOLDS, workersMin=1, workersMax=1
    )
    go = tmp_path / "go"
    with console_gw.client() as c:
        job_id = c.post(f"/v2/{ep['id']}/run", json={"input": {"go": str(go)}}).json()["id"]
        reader = c.post("/v1/keys", json={"scopes": ["read"], "endpoints": [ep["id"]]}).json()
    try:
        page = new_page(browser, console_gw, DESKTOP)
        sign_in(page, console_gw.admin_key)
        page.get_by_role("heading", name="Endpoints").wait_for()
        page.goto(f"/console/#/endpoint/{ep['id']}")
        table = page.locator("table.workers")
        managed = table.locator("tbody tr").first
        # The fleet's worker starts, takes the job and holds it: running, on the CPU.
        expect(managed.locator("td[data-label='State']")).to_have_attribute(
            "data-status", "running", timeout=60_000
        )
        expect(managed.locator(f"td[data-label='Job'] [data-job='{job_id}']")).to_have_text(
            f"{job_id[:8]}…"
        )
        expect(managed.locator("td[data-label='GPUs']")).to_have_text("CPU")
        expect(managed.locator("td[data-label='Worker']")).to_contain_text("up ")
        with console_gw.client() as c:
            [listed] = c.get(f"/v1/endpoints/{ep['id']}/workers").json()["workers"]
        expect(managed).to_have_attribute("data-worker-id", listed["id"])

        # A worker started by hand shows up beside it, idle, marked as such.
        with hand_worker(console_gw, ep, "by-hand-1"):
            hand = table.locator("tr[data-worker-id='by-hand-1']")
            expect(hand).to_contain_text("started elsewhere")
            expect(hand.locator("td[data-label='State']")).to_have_attribute("data-status", "idle")
            expect(page.locator("[data-worker='running']")).to_have_text("1")
            page.screenshot(path=shots / "console-workers.png", full_page=True)

            # A read key on the endpoint sees the same workers and a job count, no job id.
            watcher = new_page(browser, console_gw, DESKTOP)
            sign_in(watcher, reader["key"])
            watcher.goto(f"/console/#/endpoint/{ep['id']}")
            rows = watcher.locator("table.workers tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.first.locator("td[data-label='Job']")).to_have_text("1 job")
            expect(watcher.locator("table.workers [data-job]")).to_have_count(0)
            assert watcher.errors == []
            watcher.context.close()

        # The job ends: the fleet's worker turns idle and holds nothing; the hand-started
        # one stopped pinging and leaves the list once its lease runs out.
        go.write_text("go")
        expect(managed.locator("td[data-label='State']")).to_have_attribute(
            "data-status", "idle", timeout=30_000
        )
        expect(managed.locator("td[data-label='Job']")).to_have_text("—")
        expect(table.locator("tr[data-worker-id='by-hand-1']")).to_have_count(0, timeout=30_000)
        assert page.errors == []
        page.context.close()
    finally:
        go.write_text("go")
        with console_gw.client() as c:
            c.delete(f"/v1/endpoints/{ep['id']}")  # the fleet stops its worker
