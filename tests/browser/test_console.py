"""The web console in a real Chromium against a real gateway, whose supervisor starts a real
SD worker on the `tiny` model (CPU) when the console Quick-Deploys Stable Diffusion v1.5."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.browser.conftest import CHROMIUM
from tests.e2e.conftest import Gateway, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)",
    ),
]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TUTORIAL_PROMPT = "A cute fluffy white dog in the style of a Pixar animation 3D drawing."


def new_page(browser: Any, gw: Gateway, viewport: dict[str, int] = DESKTOP) -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    context = browser.new_context(viewport=viewport, base_url=gw.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # checked by the tests: no uncaught script error
    return page


def sign_in(page: Any, key: str) -> None:
    """With the keyboard only: the key field has the focus, Enter submits."""
    page.goto("/console/")
    page.get_by_label("API key").wait_for()
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def scroll_to(page: Any, selector: str, top: int) -> None:
    """Scroll so that `selector` sits `top` pixels below the top of the window."""
    page.evaluate(
        "([sel, top]) => window.scrollBy(0, document.querySelector(sel)"
        ".getBoundingClientRect().top - top)",
        [selector, top],
    )


@dataclass
class Deployed:
    id: str
    run_url: str
    curl: str


@pytest.fixture(scope="module")
def admin_page(browser: Any, console_gw: Gateway) -> Iterator[Any]:
    page = new_page(browser, console_gw)
    sign_in(page, console_gw.admin_key)
    page.get_by_role("heading", name="Endpoints").wait_for()
    yield page
    assert page.errors == []
    page.context.close()


@pytest.fixture(scope="module")
def deployed(admin_page: Any, console_gw: Gateway, shots: Path) -> Deployed:
    """Quick Deploy through the console: SD v1.5 on the CPU, model tiny, one warm worker."""
    from playwright.sync_api import expect

    page = admin_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Quick Deploy").click()
    page.get_by_role("heading", name="Quick Deploy").wait_for()
    expect(page.get_by_role("radio", name=re.compile("Stable Diffusion v1.5"))).to_be_checked()
    page.get_by_role("radio", name=re.compile("^CPU")).check()
    page.get_by_label("Model", exact=True).fill("tiny")
    page.get_by_label("Workers min", exact=True).fill("1")
    page.get_by_label("Workers max", exact=True).fill("1")
    page.get_by_label("Idle timeout (s)", exact=True).fill("30")
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=shots / "console-quick-deploy.png", full_page=True)
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", name=re.compile("^Deployed:")).wait_for()
    result = page.locator("section.result")
    deployed = Deployed(
        id=result.locator(".endpoint-id").inner_text(),
        run_url=result.locator(".run-url").inner_text(),
        curl=result.locator("pre.code").first.inner_text(),
    )
    page.screenshot(path=shots / "console-deployed.png")
    return deployed


def test_a_wrong_key_is_refused_with_a_message(browser: Any, console_gw: Gateway, shots: Path):
    from playwright.sync_api import expect

    page = new_page(browser, console_gw)
    page.goto("/")  # redirects to the console
    expect(page).to_have_url(re.compile(r"/console/$"))
    page.get_by_label("API key").wait_for()
    page.screenshot(path=shots / "console-signin.png")
    sign_in(page, "pk_not-a-real-key")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('podium.apiKey')") is None
    assert page.errors == []
    page.context.close()


def test_quick_deploy_sd15_on_cpu_shows_the_endpoint_and_its_curl_line(
    admin_page: Any, deployed: Deployed, console_gw: Gateway, shots: Path
):
    from playwright.sync_api import expect

    assert re.fullmatch(r"[a-z0-9]{14}", deployed.id)
    assert deployed.run_url == f"{console_gw.url}/v2/{deployed.id}/run"
    assert f"curl -X POST {deployed.run_url}" in deployed.curl
    assert f'{{"input": {{"prompt": "{TUTORIAL_PROMPT}"}}}}' in deployed.curl
    with console_gw.client() as http:
        endpoint = http.get(f"/v1/endpoints/{deployed.id}").json()
    assert endpoint["templateId"] == "sd15" and endpoint["model"] == "tiny"
    assert (endpoint["workersMin"], endpoint["workersMax"], endpoint["gpuIds"]) == (1, 1, "")

    # The list shows it, and its worker turns idle (ready) without a reload: live.
    page = admin_page
    page.get_by_role("link", name="All endpoints").click()
    row = page.locator(f"tr[data-endpoint='{deployed.id}']")
    expect(row).to_contain_text("Stable Diffusion v1.5 (tiny)")
    expect(row.locator("td[data-label='In queue']")).to_have_text("0")
    expect(row).to_contain_text("1 idle", timeout=60_000)
    page.screenshot(path=shots / "console-endpoints.png")

    # The endpoint page carries the same curl line.
    row.get_by_role("link").click()
    expect(page.locator("section", has_text="Call it").locator("pre.code")).to_have_text(
        deployed.curl
    )


def test_playground_shows_progress_then_images_with_seeds_and_a_png_download(
    admin_page: Any, deployed: Deployed, shots: Path
):
    from playwright.sync_api import expect

    page = admin_page
    page.goto(f"/console/#/endpoint/{deployed.id}")
    page.get_by_role("heading", name="Playground").wait_for()
    form = page.locator("form.playground-form")

    # 1. A long job (seconds on the tiny model): live per-step progress, then cancel it.
    form.get_by_label("Width", exact=True).fill("128")
    form.get_by_label("Height", exact=True).fill("128")
    form.get_by_label("Steps", exact=True).fill("500")
    form.get_by_role("button", name="Run").click()
    progress = page.locator(".progress-text")
    expect(progress).to_have_text(re.compile(r"^Step ([1-9]\d*) of 500$"), timeout=60_000)
    step = int(progress.inner_text().split()[1])
    assert 0 < step < 500
    expect(page.locator("progress")).to_have_attribute("max", "500")
    form.get_by_role("button", name="Cancel").click()
    expect(page.locator(".job-status")).to_contain_text("cancelled")

    # 2. A small job with a fixed seed: two images, their seeds, a PNG download.
    form.get_by_label("Width", exact=True).fill("64")
    form.get_by_label("Height", exact=True).fill("64")
    form.get_by_label("Steps", exact=True).fill("3")
    form.get_by_label("Seed", exact=True).fill("1234")
    form.get_by_label("Number of images", exact=True).fill("2")
    form.get_by_role("button", name="Run").click()
    expect(page.locator(".job-status")).to_contain_text("completed", timeout=60_000)
    expect(progress).to_have_text("Done")
    images = page.locator(".image-result img")
    expect(images).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-result img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)") == [64, 64]
    expect(page.locator(".image-result .seed")).to_have_text(["Seed 1234", "Seed 1235"])
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PNG").first.click()
    download = info.value
    assert download.suggested_filename.endswith("-1234.png")
    data = Path(download.path()).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("PNG", (64, 64))

    # 3. The raw JSON is one click away; the recent jobs list both runs.
    page.get_by_text("Raw request and response (JSON)").click()
    raw = page.locator("details.raw")
    expect(raw.locator("pre").first).to_contain_text('"num_inference_steps": 3')
    expect(raw.locator("pre").nth(1)).to_contain_text('"status": "COMPLETED"')
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("completed")
    expect(rows.nth(1)).to_contain_text("cancelled")
    assert "—" not in rows.nth(0).locator("td[data-label='Execution']").inner_text()
    page.get_by_text("Raw request and response (JSON)").click()  # closed again

    # 4. Health follows live (every 2 s).
    health = page.locator("section", has_text="Health")
    expect(health.locator("[data-jobs='completed']")).to_have_text("1")
    expect(health.locator("[data-jobs='cancelled']")).to_have_text("1")
    expect(health.locator("[data-worker='idle']")).to_have_text("1")
    # The page from its top down to the images (taller than the window).
    bottom = page.evaluate(
        "document.querySelector('.images').getBoundingClientRect().bottom + window.scrollY"
    )
    page.screenshot(
        path=shots / "console-endpoint.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": DESKTOP["width"], "height": bottom + 24},
    )


def test_a_created_key_is_shown_once_and_fails_with_401_once_revoked(
    admin_page: Any, console_gw: Gateway, shots: Path
):
    from playwright.sync_api import expect

    page = admin_page
    page.goto("/console/#/keys")
    page.get_by_role("heading", name="API keys").wait_for()
    page.get_by_label("Name", exact=True).fill("ci-client")
    page.get_by_role("radio", name=re.compile("^Run")).check()
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_label("API key", exact=True)
    expect(shown).to_have_value(re.compile(r"^pk_"))
    key = shown.input_value()
    page.screenshot(path=shots / "console-keys.png")
    assert httpx.get(f"{console_gw.url}/v1/me", headers={"Authorization": key}).status_code == 200

    # Shown once: hidden again, and never in the list, which shows its prefix only.
    page.get_by_role("button", name="Done, hide it").click()
    expect(shown).to_have_count(0)
    row = page.locator("tr", has_text="ci-client")
    expect(row).to_contain_text(f"{key[:7]}…")
    assert key not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    expect(row).to_contain_text("revoked")
    for path in ("/v1/me", "/metrics"):
        r = httpx.get(console_gw.url + path, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401, (path, r.text)


def test_a_read_only_key_sees_no_deploy_and_the_api_refuses_it(
    browser: Any, console_gw: Gateway, deployed: Deployed
):
    from playwright.sync_api import expect

    with console_gw.client() as http:
        r = http.post("/v1/keys", json={"name": "watcher", "scopes": ["read"]})
        assert r.status_code == 200, r.text
        key = r.json()["key"]
    page = new_page(browser, console_gw)
    sign_in(page, key)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Endpoints")).to_be_visible()
    expect(nav.get_by_role("link", name="Quick Deploy")).to_be_hidden()
    expect(nav.get_by_role("link", name="API keys")).to_be_hidden()
    expect(page.get_by_text("watcher · read key")).to_be_visible()
    expect(page.get_by_role("link", name="Quick Deploy")).to_have_count(0)
    page.goto("/console/#/deploy")
    expect(page.get_by_role("heading", name="This page needs an admin key")).to_be_visible()
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    r = httpx.post(
        f"{console_gw.url}/v1/endpoints",
        json={"name": "nope", "templateId": "sd15", "model": "tiny"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 403 and "`admin` scope" in r.json()["error"]
    # It may watch an endpoint (health, jobs) but not run jobs or change it.
    page.goto(f"/console/#/endpoint/{deployed.id}")
    expect(page.get_by_role("heading", name="Health")).to_be_visible()
    expect(page.get_by_text("read scope only")).to_be_visible()
    expect(page.get_by_role("heading", name="Playground")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete endpoint")).to_have_count(0)
    expect(page.get_by_role("heading", name="Scaling")).to_have_count(0)
    assert page.errors == []
    page.context.close()


def test_the_endpoint_page_loads_its_worker_logs(admin_page: Any, deployed: Deployed):
    """The supervisor's start line of the deployed worker, then the worker's own lines."""
    from playwright.sync_api import expect

    page = admin_page
    page.goto(f"/console/#/endpoint/{deployed.id}")
    page.get_by_text("Worker logs", exact=True).click()
    logs = page.get_by_label("Worker logs")
    page.get_by_role("button", name="Load the last 100 lines").click()
    expect(logs).to_contain_text(re.compile(r"--- podium: worker \S+ start, GPUs \[\]"))
    expect(logs).to_contain_text(re.compile(r"^\d{4}-\d\d-\d\dT\S+Z \S+ \| "))


def test_the_endpoint_page_is_readable_on_a_phone(
    browser: Any, console_gw: Gateway, deployed: Deployed, shots: Path
):
    from playwright.sync_api import expect

    page = new_page(browser, console_gw, PHONE)
    sign_in(page, console_gw.admin_key)
    page.get_by_role("heading", name="Endpoints").wait_for()
    page.goto(f"/console/#/endpoint/{deployed.id}")
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()
    form = page.locator("form.playground-form")
    form.get_by_label("Width", exact=True).fill("64")
    form.get_by_label("Height", exact=True).fill("64")
    form.get_by_label("Steps", exact=True).fill("2")
    form.get_by_label("Seed", exact=True).fill("7")
    form.get_by_role("button", name="Run").click()
    expect(page.locator(".image-result .seed")).to_have_text(["Seed 7"], timeout=60_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"
    scroll_to(page, ".playground-form .actions", 40)
    page.screenshot(path=shots / "console-phone.png")
    assert page.errors == []
    page.context.close()


def test_quick_deploy_lists_the_gpus_with_name_and_memory_and_deploys_on_the_ticked_one(
    browser: Any, tmp_path: Path
):
    """A gateway with an injected inventory of two GPUs and no supervisor (nothing starts)."""
    from playwright.sync_api import expect

    gpus = "0, NVIDIA H100 80GB HBM3, 81559; 1, NVIDIA GeForce RTX 4090, 24564"
    gw = Gateway(
        data_dir=tmp_path / "gw", port=free_port(), extra_args=["--no-supervisor", "--gpus", gpus]
    )
    gw.data_dir.mkdir()
    gw.start()
    try:
        page = new_page(browser, gw)
        sign_in(page, gw.admin_key)
        page.get_by_role("heading", name="Endpoints").wait_for()
        page.goto("/console/#/deploy")
        expect(page.get_by_text("runs no supervisor")).to_be_visible()
        h100 = page.get_by_role("checkbox", name=re.compile("^GPU 0: NVIDIA H100 80GB HBM3"))
        rtx = page.get_by_role("checkbox", name=re.compile("^GPU 1: NVIDIA GeForce RTX 4090"))
        expect(page.locator(".option-card", has=h100)).to_contain_text("79.6 GiB · free")
        expect(page.locator(".option-card", has=rtx)).to_contain_text("24.0 GiB · free")
        expect(page.get_by_role("radio", name=re.compile("^CPU"))).to_have_count(0)
        rtx.check()
        page.get_by_role("button", name="Deploy").click()
        endpoint_id = page.locator("section.result .endpoint-id").inner_text()
        with gw.client() as http:
            endpoint = http.get(f"/v1/endpoints/{endpoint_id}").json()
        assert (endpoint["gpuIds"], endpoint["gpuCount"], endpoint["workersMax"]) == ("1", 1, 2)
        assert page.errors == []
        page.context.close()
    finally:
        gw.stop()


def test_quick_deploy_of_a_container_image_with_a_volume_and_credentials(
    browser: Any, tmp_path: Path, shots: Path
):
    """The image card: image, registry credentials and a network volume picked from the
    gateway's; a name that is no image is refused with the gateway's reason."""
    from playwright.sync_api import expect

    gw = Gateway(data_dir=tmp_path / "gw", port=free_port(), extra_args=["--no-supervisor"])
    gw.data_dir.mkdir()
    gw.start()
    try:
        with gw.client() as http:
            volume = http.post(
                "/v2/network-volumes", json={"name": "models", "size": 50, "dataCenter": "local"}
            ).json()
            registry = http.post(
                "/v2/registries", json={"name": "ghcr", "username": "me", "password": "pw"}
            ).json()
        page = new_page(browser, gw)
        sign_in(page, gw.admin_key)
        page.get_by_role("heading", name="Endpoints").wait_for()
        page.goto("/console/#/deploy")
        page.get_by_role("radio", name=re.compile("^Container image")).check()
        expect(page.get_by_label("Model", exact=True)).to_be_hidden()
        expect(page.get_by_label("Endpoint name")).to_have_value("image-worker")
        page.get_by_label("Image", exact=True).fill("Not An Image")
        page.get_by_role("button", name="Deploy").click()
        expect(page.get_by_role("alert")).to_contain_text("imageName")
        page.get_by_label("Image", exact=True).fill("ghcr.io/team/worker:1.2")
        page.get_by_label("Registry credentials").select_option(registry["id"])
        page.get_by_label("Network volume").select_option(volume["id"])
        page.screenshot(path=shots / "console-quick-deploy-image.png", full_page=True)
        page.get_by_role("button", name="Deploy").click()
        endpoint_id = page.locator("section.result .endpoint-id").inner_text()
        with gw.client() as http:
            endpoint = http.get(f"/v1/endpoints/{endpoint_id}").json()
        assert endpoint["templateId"] is None and endpoint["command"] is None
        assert endpoint["imageName"] == "ghcr.io/team/worker:1.2"
        assert endpoint["containerRegistryAuthId"] == registry["id"]
        assert endpoint["networkVolumeId"] == volume["id"]
        assert page.errors == []
        page.context.close()
    finally:
        gw.stop()


# --- load-balancing endpoints ---------------------------------------------------------

LB_APP = f"{sys.executable} {Path(__file__).resolve().parents[1] / 'lb_app.py'}"


def open_quick_deploy(page: Any) -> None:
    """A fresh Quick Deploy form (from another page: a page already on #/deploy, showing
    its last result, has no hash change to follow)."""
    page.goto("/console/#/endpoints")
    page.get_by_role("heading", name="Endpoints").wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Quick Deploy").click()
    page.get_by_role("heading", name="Quick Deploy").wait_for()


@pytest.fixture(scope="module")
def lb_deployed(admin_page: Any, console_gw: Gateway, shots: Path) -> Deployed:
    """Quick Deploy through the console: the FastAPI worker app tests/lb_app.py (a `/ping`,
    `POST /generate`) as a custom command, endpoint type Load balancer, no warm worker."""
    from playwright.sync_api import expect

    page = admin_page
    open_quick_deploy(page)
    queue = page.get_by_role("radio", name=re.compile("^Queue"))
    balancer = page.get_by_role("radio", name=re.compile("^Load balancer"))
    expect(queue).to_be_hidden()  # Stable Diffusion takes jobs from a queue only
    page.get_by_role("radio", name=re.compile("^Custom command")).check()
    expect(queue).to_be_checked()
    expect(page.locator(".option-card", has=balancer)).to_contain_text(
        "Requests go straight to your workers' HTTP server (PORT, /ping health check)"
    )
    balancer.check()
    page.get_by_label("Endpoint name").fill("lb-worker")
    page.get_by_label("Command", exact=True).fill(LB_APP)
    page.get_by_label("Workers min", exact=True).fill("0")
    page.get_by_label("Workers max", exact=True).fill("1")
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=shots / "console-quick-deploy-lb.png", full_page=True)
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", name=re.compile("^Deployed:")).wait_for()
    result = page.locator("section.result")
    expect(result.locator(".endpoint-type")).to_have_text("Load balancer")
    expect(result.locator(".run-url")).to_have_count(0)
    return Deployed(
        id=result.locator(".endpoint-id").inner_text(),
        run_url=result.locator(".lb-url").inner_text(),
        curl=result.locator("pre.code").first.inner_text(),
    )


def test_quick_deploy_of_a_load_balancer_creates_a_load_balancing_endpoint(
    lb_deployed: Deployed, console_gw: Gateway
):
    assert lb_deployed.run_url == f"{console_gw.url}/lb/{lb_deployed.id}/"
    assert f"curl {lb_deployed.run_url}" in lb_deployed.curl
    with console_gw.client() as http:
        endpoint = http.get(f"/v1/endpoints/{lb_deployed.id}").json()
        # No queue: jobs are refused, as on RunPod.
        refused = http.post(f"/v2/{lb_deployed.id}/run", json={"input": {}})
    assert endpoint["type"] == "LOAD_BALANCER"
    assert endpoint["scalerType"] == "REQUEST_COUNT"
    assert (endpoint["templateId"], endpoint["command"]) == ("custom", LB_APP)
    assert refused.status_code == 400


def test_queue_is_the_default_endpoint_type_of_a_custom_command(
    admin_page: Any, console_gw: Gateway
):
    page = admin_page
    open_quick_deploy(page)
    page.get_by_role("radio", name=re.compile("^Custom command")).check()
    page.get_by_label("Endpoint name").fill("queue-worker")
    page.get_by_label("Command", exact=True).fill("python handler.py")
    page.get_by_label("Workers min", exact=True).fill("0")
    page.get_by_label("Workers max", exact=True).fill("0")
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", name=re.compile("^Deployed:")).wait_for()
    result = page.locator("section.result")
    endpoint_id = result.locator(".endpoint-id").inner_text()
    assert result.locator(".run-url").inner_text() == f"{console_gw.url}/v2/{endpoint_id}/run"
    with console_gw.client() as http:
        assert http.get(f"/v1/endpoints/{endpoint_id}").json()["type"] == "QUEUE"
        assert http.delete(f"/v1/endpoints/{endpoint_id}").status_code == 200


def test_a_load_balancer_page_shows_its_urls_and_sends_a_test_request_to_a_worker(
    admin_page: Any, lb_deployed: Deployed, console_gw: Gateway, shots: Path
):
    """The /lb/ URL and the host form instead of /run; the test request reaches the real
    worker app (started on demand), and shows its status, worker id and body."""
    from playwright.sync_api import expect

    page = admin_page
    eid = lb_deployed.id
    page.goto(f"/console/#/endpoint/{eid}")
    page.get_by_role("heading", name="Test request").wait_for()
    expect(page.locator(".page-head .endpoint-type")).to_have_text("Load balancer")
    usage = page.locator("section", has_text="Call it")
    expect(usage.locator(".endpoint-type")).to_have_text("Load balancer")
    expect(usage.locator(".lb-url")).to_have_text(f"{console_gw.url}/lb/{eid}/")
    expect(usage.locator(".lb-host-url")).to_have_text(f"http://{eid}.localhost:{console_gw.port}/")
    expect(usage.locator(".run-url")).to_have_count(0)
    expect(page.get_by_role("heading", name="Playground")).to_have_count(0)
    expect(page.get_by_role("heading", name="Recent jobs")).to_have_count(0)

    form = page.locator("form.lb-request-form")
    expect(form.get_by_label("Path", exact=True)).to_have_value("/")
    expect(form.get_by_label("Body (JSON)")).to_be_hidden()  # GET carries no body
    form.get_by_label("Method", exact=True).select_option("POST")
    form.get_by_label("Path", exact=True).fill("/generate")
    body = form.get_by_label("Body (JSON)")
    body.fill("{not json")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("section.lb-request").get_by_role("alert")).to_contain_text(
        "not valid JSON"
    )
    body.fill('{"hello": "<b>console</b>"}')
    form.get_by_role("button", name="Send").click()
    answer = page.locator(".lb-answer")
    # The first request waits for the worker the fleet starts for it (a cold start).
    expect(answer.locator(".lb-status")).to_have_text("200", timeout=120_000)
    worker = answer.locator(".lb-worker").inner_text()
    shown = answer.locator("pre.lb-body")
    expect(shown).to_contain_text(f'"worker": "{worker}"')
    expect(shown).to_contain_text('"hello": "<b>console</b>"')  # text, not markup
    expect(shown.locator("b")).to_have_count(0)
    expect(shown).to_contain_text('"path": "/generate"')
    expect(page.locator("section.lb-request").get_by_role("alert")).to_have_count(0)

    # The worker's own 404 is shown as it came, with the worker that answered.
    form.get_by_label("Method", exact=True).select_option("GET")
    form.get_by_label("Path", exact=True).fill("no-such-path")
    form.get_by_role("button", name="Send").click()
    expect(answer.locator(".lb-status")).to_have_text("404")
    expect(answer.locator(".lb-worker")).to_have_text(worker)
    expect(answer.locator("pre.lb-body")).to_contain_text('"detail": "Not Found"')

    # Its worker: ready, no request in flight, a measured cold start.
    row = page.locator(f"table.workers tr[data-worker-id='{worker}']")
    expect(row.locator("td[data-label='Health']")).to_have_attribute("data-health", "ready")
    expect(row.locator("td[data-label='In flight']")).to_have_text("0")
    expect(row.locator("td[data-label='Cold start']")).not_to_have_text("—")
    page.screenshot(path=shots / "console-endpoint-lb.png", full_page=True)
    assert page.errors == []
