"""Container workers with a real engine: a `podium serve` gateway runs images through Podman
(runc, cgroupfs: tests/images), built here from a Debian base (no registry is reachable).

What RunPod users ship: an unmodified runpod SDK worker image answering `/runsync` through
the runpod SDK client; two endpoints sharing a network volume; an image that cannot be
pulled, named in the workers list and the logs while its job waits; a gateway killed with
-9 whose containers the next start removes. (A container worker on Ray:
tests/e2e/test_fleet_ray.py.)
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.endpoints.containers import LABEL_OWNER
from tests.e2e.conftest import Gateway, free_port, wait_until
from tests.images import engine_env, podium_image, runpod_image, unavailable
from tests.runpod_compat.harness import RUNPOD_PY, SdkDriver

pytestmark = [pytest.mark.e2e, pytest.mark.containers]

ARGS = ["--supervisor-tick-s", "0.2", "--take-hold-s", "2", "--gpus", "none"]
ENV = {"PODIUM_PING_INTERVAL_MS": "1000"}  # leases of 3 s: a lost worker's job comes back soon
MISSING = "localhost/podium-test-missing:nope"


@pytest.fixture(scope="module")
def image() -> str:
    reason = unavailable()
    if reason is not None:
        pytest.fail(f"container tests need Podman here: {reason} (make test installs it)")
    return runpod_image()  # built once, cached by tag in Podman's store


def _gateway(data: Path, port: int | None = None) -> Gateway:
    return Gateway(
        data_dir=data, port=port or free_port(), extra_args=ARGS, env={**engine_env(), **ENV}
    )


@pytest.fixture(scope="module")
def cgw(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[Gateway]:
    gw = _gateway(tmp_path_factory.mktemp("containers-gw")).start()
    try:
        yield gw
    finally:
        gw.stop()


def _deploy(gw: Gateway, **spec: Any) -> dict[str, Any]:
    with gw.client() as c:
        r = c.post("/v1/endpoints", json={"name": "c", "idleTimeout": 30, **spec})
        assert r.status_code == 200, r.text
        return dict(r.json())


def _runsync(gw: Gateway, ep: str, payload: dict[str, Any]) -> dict[str, Any]:
    with gw.client(timeout=200) as c:
        r = c.post(f"/v2/{ep}/runsync", params={"wait": 180_000}, json={"input": payload})
        assert r.status_code == 200, r.text
        return dict(r.json())


def _containers(owner_label: str | None = None) -> list[dict[str, Any]]:
    argv = ["podman", "ps", "--all", "--format", "json"]
    if owner_label is not None:
        argv[3:3] = ["--filter", f"label={LABEL_OWNER}={owner_label}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=_podman_env())
    return list(json.loads(out.stdout or "[]"))


def _podman_env() -> dict[str, str]:
    import os

    return {**os.environ, **engine_env()}


def _logs(gw: Gateway, ep: str) -> str:
    with gw.client() as c:
        body = c.get(f"/v1/endpoints/{ep}/logs", params={"tail": 500}).json()
    return "\n".join(line["text"] for line in body["lines"])


def test_an_unmodified_runpod_sdk_image_answers_runsync_through_the_sdk_client(
    cgw: Gateway, image: str, tmp_path: Path
) -> None:
    if not RUNPOD_PY.exists():
        pytest.fail(f"the runpod SDK venv is missing ({RUNPOD_PY}): make test creates it")
    ep = _deploy(cgw, imageName=image, workersMax=1)["id"]
    with cgw.client() as c:
        key = c.post("/v1/keys", json={"scopes": ["run"], "endpoints": [ep]}).json()["key"]
        gpus = c.get("/v1/gpus").json()
    assert gpus["containerEngine"].startswith("podman ")
    sdk = SdkDriver(cgw, tmp_path)
    try:
        out = sdk.ok("run_sync", endpoint=ep, key=key, input={"hi": 1}, timeout=170)
    finally:
        sdk.stop()
    assert out["echo"] == {"hi": 1}
    with cgw.client() as c:
        [worker] = [w for w in c.get(f"/v1/endpoints/{ep}/workers").json()["workers"]]
    assert out["worker"] == worker["id"] and worker["managed"] and worker["pid"]
    logs = wait_until(
        lambda: (text := _logs(cgw, ep)) and "Finished." in text and text,
        timeout=30,
        what="the SDK's own lines, shipped from the container",
    )
    assert f"image {image}" in logs
    [container] = [c for c in _containers() if c["Labels"].get("io.podium.worker") == worker["id"]]
    assert container["Labels"]["io.podium.endpoint"] == ep
    assert "RUNPOD_AI_API_KEY" not in " ".join(container.get("Command") or [])


def test_a_load_balancing_image_serves_requests_through_the_gateway(cgw: Gateway) -> None:
    """An image whose server answers `/ping` and `/generate` on PORT (tests/lb_app.py), a
    LOAD_BALANCER endpoint: scaled from zero by the first request, reached by Host."""
    app = (Path(__file__).resolve().parents[1] / "lb_app.py").read_text()
    image = podium_image({"lb_app.py": app})
    ep = _deploy(
        cgw,
        name="lb-image",
        type="LOAD_BALANCER",
        imageName=image,
        command="/venv/bin/python /handlers/lb_app.py",
        workersMax=1,
    )
    headers = {"Authorization": f"Bearer {cgw.admin_key}", "Host": f"{ep['id']}.localhost"}
    r = httpx.post(f"{cgw.url}/generate", json={"in": "image"}, headers=headers, timeout=200)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["echo"] == {"in": "image"} and r.headers["x-runpod-worker-id"] == body["worker"]

    def ready() -> list[dict[str, Any]] | None:
        # the proxy may route to a worker a moment before the fleet's report shows it ready
        with cgw.client() as c:
            shown = c.get(f"/v1/endpoints/{ep['id']}", params={"includeWorkers": "true"})
        workers = shown.json()["workers"]
        return workers if workers and workers[0].get("health") == "ready" else None

    (worker,) = wait_until(ready, timeout=30, what="the worker shown ready")
    assert worker["id"] == body["worker"]
    with cgw.client() as c:
        assert c.delete(f"/v1/endpoints/{ep['id']}").status_code == 200


def test_two_endpoints_share_one_network_volume(cgw: Gateway, image: str) -> None:
    with cgw.client() as c:
        r = c.post("/v2/network-volumes", json={"name": "shared", "size": 10, "dataCenter": "here"})
        assert r.status_code == 201, r.text
        volume = r.json()
    command = "/venv/bin/python /handlers/volume.py"
    writer = _deploy(cgw, imageName=image, command=command, networkVolumeId=volume["id"])["id"]
    reader = _deploy(cgw, imageName=image, command=command, networkVolumeId=volume["id"])["id"]
    wrote = _runsync(cgw, writer, {"write": {"name": "greeting", "text": "hello, volume"}})
    assert wrote["status"] == "COMPLETED" and wrote["output"] == {"wrote": "greeting"}, wrote
    read = _runsync(cgw, reader, {"read": "greeting"})
    assert read["status"] == "COMPLETED" and read["output"] == {"text": "hello, volume"}, read
    on_disk = cgw.data_dir / "volumes" / volume["id"] / "greeting"
    assert on_disk.read_text() == "hello, volume"
    with cgw.client() as c:
        r = c.delete(f"/v2/network-volumes/{volume['id']}")
        assert r.status_code == 409 and r.json()["status"] == 409 and writer in r.json()["detail"]
        for ep in (writer, reader):
            c.delete(f"/v1/endpoints/{ep}")
        assert c.delete(f"/v2/network-volumes/{volume['id']}").status_code == 204
    assert not on_disk.parent.exists()


def test_an_image_that_cannot_be_pulled_is_named_while_its_job_waits(cgw: Gateway) -> None:
    ep = _deploy(cgw, imageName=MISSING, workersMax=1)["id"]
    with cgw.client() as c:
        job = c.post(f"/v2/{ep}/run", json={"input": {}}).json()["id"]

        def named() -> dict[str, Any] | None:
            workers = c.get(f"/v1/endpoints/{ep}/workers").json()["workers"]
            return next((w for w in workers if MISSING in (w["reason"] or "")), None)

        worker = wait_until(named, timeout=60, what="the missing image named")
        assert worker["status"] in ("initializing", "unhealthy")
        assert c.get(f"/v2/{ep}/status/{job}").json()["status"] == "IN_QUEUE"  # nothing lost
        unhealthy = wait_until(
            lambda: c.get(f"/v2/{ep}/health").json()["workers"]["unhealthy"] == 1,
            timeout=60,
            what="unhealthy after its start-up failures (backoff: 1 s, 2 s)",
        )
        assert unhealthy
        [worker] = c.get(f"/v1/endpoints/{ep}/workers").json()["workers"]
        assert MISSING in worker["reason"] and "not restarted" in worker["reason"]
        assert worker["restarts"] == 2  # three tries, backed off: no tight loop
        assert c.get(f"/v2/{ep}/status/{job}").json()["status"] == "IN_QUEUE"
        assert f"cannot pull image {MISSING}" in _logs(cgw, ep)
        c.delete(f"/v1/endpoints/{ep}")


def test_a_gateway_killed_with_9_leaves_no_orphan_container(tmp_path: Path, image: str) -> None:
    (tmp_path / "gw").mkdir()
    gw = _gateway(tmp_path / "gw").start()
    try:
        ep = _deploy(gw, imageName=image, command="/venv/bin/python /handlers/sleepy.py")["id"]
        with gw.client() as c:
            # the fleet is up: its first pass found the engine (it publishes it then)
            wait_until(
                lambda: c.get("/v1/gpus").json()["containerEngine"],
                timeout=60,
                what="the fleet's container engine",
            )
            job = c.post(f"/v2/{ep}/run", json={"input": {"seconds": 4}}).json()["id"]
            wait_until(
                lambda: c.get(f"/v2/{ep}/status/{job}").json()["status"] == "IN_PROGRESS",
                timeout=120,
                what="the job running in its container",
            )
        before = [c for c in _containers() if c["Labels"].get("io.podium.endpoint") == ep]
        assert len(before) == 1 and before[0]["State"] == "running"
        assert gw.proc is not None
        gw.proc.kill()  # kill -9: the engine keeps the container running
        gw.proc.wait(10)
        still = [c for c in _containers() if c["Names"] == before[0]["Names"]]
        assert still and still[0]["State"] == "running"
        gw.start()  # the next start removes it before it starts any worker
        wait_until(
            lambda: not [c for c in _containers() if c["Names"] == before[0]["Names"]],
            timeout=60,
            what="the orphan container removed",
        )
        with gw.client(timeout=60) as c:
            final = wait_until(
                lambda: (
                    (s := c.get(f"/v2/{ep}/status/{job}").json())["status"] == "COMPLETED" and s
                ),
                timeout=180,
                what="the job completed",
            )
            # The old container may have reported its result to the restarted gateway
            # before it was removed (then retries is 0); either way nothing is lost.
            assert final["output"]["slept"] == 4
            c.delete(f"/v1/endpoints/{ep}")
    finally:
        gw.stop()
    wait_until(
        lambda: not [c for c in _containers() if c["Labels"].get("io.podium.endpoint") == ep],
        timeout=60,
        what="its containers gone after the endpoint was deleted",
    )


def test_v2_volume_and_registry_errors_are_runpods_error_response(cgw: Gateway) -> None:
    with httpx.Client(base_url=cgw.url, headers={"Authorization": cgw.admin_key}) as c:
        r = c.post("/v2/network-volumes", json={"name": "x", "size": 5, "dataCenter": "d"})
        body = r.json()
        assert r.status_code == 400 and body["title"] == "Bad Request" and body["errors"]
        r = c.post(
            "/v2/registries", json={"name": "x", "username": "u", "password": "p", "bogus": 1}
        )
        assert r.status_code == 400
        assert "$: additional properties 'bogus' not allowed" in r.json()["errors"]
