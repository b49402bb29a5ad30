"""Snapshot cold starts end to end (docs/snapshots.md): a real gateway, real workers, real
CRIU (>= 4: tools/build-criu.sh, which `make test` runs). A flashboot endpoint's first
worker is checkpointed once it has built its state; later cold starts restore copies of
it, each a new worker; any change makes a new snapshot; a broken image or a dump killed
half way is never used; the disk bound holds; a worker that does not speak the handshake
(the runpod SDK's) starts normally."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from podium.cli import app
from podium.fleet.snapshots import find_criu
from tests.e2e.conftest import Gateway, free_port, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WARM = REPO / "tests" / "fleet" / "handlers" / "warm.py"
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
RUNPOD_HANDLER = REPO / "tests" / "runpod_compat" / "handlers" / "sync_handler.py"
ARGS = ["--supervisor-tick-s", "0.2", "--take-hold-s", "2", "--gpus", "none"]
CRIU = find_criu()

if CRIU is None:
    pytest.skip(
        "snapshots need root and CRIU >= 4 (tools/build-criu.sh builds it; make test does)",
        allow_module_level=True,
    )


class Snap:
    """One gateway on its own data dir and helpers."""

    def __init__(self, gw: Gateway, handler: Path) -> None:
        self.gw = gw
        self.http = gw.client(timeout=60)
        self.handler = handler

    def deploy(self, **spec: Any) -> str:
        command = f"{sys.executable} -m podium.worker {self.handler}:handler"
        body = {
            "name": "snap",
            "templateId": "custom",
            "command": command,
            "flashboot": True,
            "workersMin": 1,
            "workersMax": 3,
            "idleTimeout": 1,
            **spec,
        }
        r = self.http.post("/v1/endpoints", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    def listing(self, ep: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/endpoints/{ep}/workers").raise_for_status().json())

    def ready(self, ep: str, n: int) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            # the fleet's own (a worker of a killed gateway is listed for a lease after
            # its last ping, as started elsewhere)
            ws = [
                w
                for w in self.listing(ep)["workers"]
                if w["managed"] and w["status"] in ("idle", "running")
            ]
            return ws if len(ws) == n else None

        return list(wait_until(enough, timeout=90, interval=0.1, what=f"{n} ready workers"))

    def snapshot(self, ep: str, timeout: float = 90, **want: Any) -> dict[str, Any]:
        def taken() -> dict[str, Any] | None:
            s = self.listing(ep)["snapshots"]
            return s if s and all(s[k] == v for k, v in want.items()) else None

        return dict(wait_until(taken, timeout=timeout, interval=0.1, what=f"snapshots {want}"))

    def images(self) -> list[dict[str, Any]]:
        return list(self.http.get("/v1/snapshots").raise_for_status().json()["snapshots"])

    def to_zero(self, ep: str) -> None:
        self.http.patch(f"/v1/endpoints/{ep}", json={"workersMin": 0}).raise_for_status()
        wait_until(lambda: not self.listing(ep)["workers"], timeout=60, what="no workers")

    def scale(self, ep: str, n: int) -> None:
        self.http.patch(f"/v1/endpoints/{ep}", json={"workersMin": n}).raise_for_status()

    def job(self, ep: str, xs: list[int]) -> dict[str, Any]:
        r = self.http.post(f"/v2/{ep}/runsync", json={"input": {"xs": xs}}, params={"wait": 60000})
        body = dict(r.raise_for_status().json())
        assert body["status"] == "COMPLETED", body
        return body

    def logs(self, ep: str) -> str:
        body = self.http.get(f"/v1/endpoints/{ep}/logs", params={"tail": 500}).json()
        return "".join(line["text"] + "\n" for line in body["lines"])


def _gateway(tmp_path: Path, **env: str) -> Gateway:
    data = tmp_path / "gw"
    data.mkdir(exist_ok=True)
    return Gateway(data_dir=data, port=free_port(), extra_args=ARGS, env=env, start_timeout=60)


@pytest.fixture
def handler(tmp_path: Path) -> Path:
    """The warm handler, copied: a test may change the file."""
    copy = tmp_path / "warm.py"
    shutil.copy(WARM, copy)
    return copy


@pytest.fixture
def snap(tmp_path: Path, handler: Path) -> Iterator[Snap]:
    gw = _gateway(tmp_path).start()
    s = Snap(gw, handler)
    try:
        yield s
    finally:
        s.http.close()
        gw.stop()


def _expected_sum(xs: list[int]) -> int:
    return sum(x * x % 1_000_003 for x in xs)


def test_restored_copies_are_new_workers_that_complete_jobs(snap: Snap) -> None:
    ep = snap.deploy()
    taken = snap.snapshot(ep, images=1, taken=1)
    assert taken["bytes"] > 50 * 2**20  # the handler's ~100 MB of state
    [original] = snap.ready(ep, 1)
    assert "startedFrom" not in original
    first = snap.job(ep, [1, 2, 3])
    assert first["output"]["sum"] == _expected_sum([1, 2, 3])
    snap.to_zero(ep)

    snap.scale(ep, 3)  # three cold starts at once: all three restored
    workers = snap.ready(ep, 3)
    ids = {w["id"] for w in workers}
    assert len(ids) == 3 and original["id"] not in ids
    assert all(w["startedFrom"] == "snapshot" and w["restoreSeconds"] > 0 for w in workers)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda i: snap.job(ep, [i, i + 1]), range(12)))
    for i, job in enumerate(done):
        out = job["output"]
        assert out["sum"] == _expected_sum([i, i + 1])
        assert out["digest"] == first["output"]["digest"]  # the state built before the dump
        assert out["worker"] == job["workerId"] and job["workerId"] in ids  # its own identity
        assert out["home"].endswith(job["workerId"])
    draws = [j["output"]["draw"] for j in done]
    assert len(set(draws)) == len(draws)  # reseeded: no two copies draw the same
    summary = snap.snapshot(ep, restored=3)
    assert summary["restoreFailures"] == 0 and summary["taken"] == 1
    assert summary["restoreP50Seconds"] <= summary["restoreP90Seconds"]
    [image] = snap.images()
    assert image["endpointId"] == ep and image["restores"] == 3
    metrics = snap.http.get("/metrics").text
    assert f'podium_cold_starts_total{{endpoint="{ep}",kind="restored"}} 3.0' in metrics
    assert f'podium_cold_starts_total{{endpoint="{ep}",kind="started"}} 1.0' in metrics
    assert f'podium_snapshot_restore_seconds_count{{endpoint="{ep}"}} 3.0' in metrics
    wait_until(lambda: "restored from snapshot" in snap.logs(ep), what="the restore, logged")


def test_a_changed_env_or_file_makes_a_new_snapshot_and_deletes_the_old(
    snap: Snap, handler: Path
) -> None:
    ep = snap.deploy(workersMin=1)
    snap.snapshot(ep, images=1, taken=1)
    [old] = snap.images()
    # a new env: a new release, its worker started (not restored) and checkpointed anew
    snap.http.patch(f"/v1/endpoints/{ep}", json={"env": {"MODE": "two"}}).raise_for_status()
    snap.snapshot(ep, images=1, taken=2)
    [new] = snap.images()
    assert new["key"] != old["key"]
    assert not (snap.gw.data_dir / "snapshots" / old["key"]).exists()
    # a changed file the worker imported: the image is stale at the next cold start
    snap.ready(ep, 1)
    snap.to_zero(ep)
    handler.write_text(handler.read_text() + "\nCHANGED = True\n")
    snap.scale(ep, 1)
    summary = snap.snapshot(ep, images=1, taken=3)
    [worker] = snap.ready(ep, 1)
    assert "startedFrom" not in worker and summary["restored"] == 0
    [newest] = snap.images()
    assert newest["key"] == new["key"] and newest["createdAt"] > new["createdAt"]
    assert "stale" in snap.gw.log_path.read_text()  # type: ignore[union-attr]
    # a deleted endpoint's image goes with it
    snap.http.delete(f"/v1/endpoints/{ep}").raise_for_status()
    wait_until(lambda: snap.images() == [], what="the deleted endpoint's image gone")
    assert not (snap.gw.data_dir / "snapshots" / newest["key"]).exists()


def test_a_corrupted_image_falls_back_to_a_normal_start(snap: Snap) -> None:
    ep = snap.deploy(workersMin=1)
    snap.snapshot(ep, images=1, taken=1)
    snap.ready(ep, 1)
    snap.to_zero(ep)
    [image] = snap.images()
    img = snap.gw.data_dir / "snapshots" / image["key"] / "img"
    (img / "pstree.img").write_bytes(os.urandom(64))  # the process tree, unreadable
    snap.scale(ep, 1)
    [worker] = snap.ready(ep, 1)
    assert "startedFrom" not in worker  # started as the program
    assert snap.job(ep, [5])["output"]["sum"] == _expected_sum([5])
    summary = snap.snapshot(ep, restoreFailures=1, taken=2, images=1)
    assert summary["restored"] == 0
    [fresh] = snap.images()
    assert fresh["createdAt"] > image["createdAt"]  # made anew, whole
    wait_until(lambda: "restore of snapshot" in snap.logs(ep), what="the failure, logged")
    assert (snap.gw.data_dir / "snapshots" / ".last-restore-failure" / "restore.log").exists()


def test_a_dump_killed_half_way_leaves_no_image(tmp_path: Path, handler: Path) -> None:
    """criu is SIGKILLed at the end of its dump (a wrapper kills itself once the real
    dump returns): the image it wrote is never used; the worker goes on serving."""
    assert CRIU is not None
    wrapper = tmp_path / "criu-killed"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = dump ]; then "{CRIU.path}" "$@"; kill -9 $$; fi\n'
        f'exec "{CRIU.path}" "$@"\n'
    )
    wrapper.chmod(0o755)
    gw = _gateway(tmp_path, PODIUM_CRIU=str(wrapper)).start()
    s = Snap(gw, handler)
    try:
        ep = s.deploy(workersMin=1)
        s.ready(ep, 1)
        assert s.job(ep, [2])["output"]["sum"] == _expected_sum([2])
        # the failed dump, in the worker's log
        wait_until(lambda: "snapshot of endpoint" in s.logs(ep), what="the failed dump's line")
        s.snapshot(ep, taken=0, takeFailures=1, images=0)  # as the fleet next publishes it
        assert s.images() == []
        assert [p.name for p in (gw.data_dir / "snapshots").iterdir()] == []
        # not tried again at every cold start: the next worker starts normally
        s.to_zero(ep)
        s.scale(ep, 1)
        [worker] = s.ready(ep, 1)
        assert "startedFrom" not in worker
        assert s.job(ep, [4])["output"]["sum"] == _expected_sum([4])
        assert s.listing(ep)["snapshots"]["takeFailures"] == 1
    finally:
        s.http.close()
        gw.stop()


def test_the_endpoint_bound_is_honoured(tmp_path: Path, handler: Path) -> None:
    gw = _gateway(tmp_path, PODIUM_SNAPSHOT_ENDPOINT_MAX_GB="0.02").start()  # 20 MB
    s = Snap(gw, handler)
    try:
        ep = s.deploy(workersMin=1)
        s.ready(ep, 1)
        assert s.job(ep, [3])["output"]["sum"] == _expected_sum([3])
        wait_until(lambda: "PODIUM_SNAPSHOT_ENDPOINT_MAX_GB" in s.logs(ep), what="the refusal")
        s.snapshot(ep, taken=0, takeFailures=1, images=0)
        assert s.images() == []
    finally:
        s.http.close()
        gw.stop()


@pytest.mark.skipif(not RUNPOD_PY.exists(), reason="the runpod SDK venv (make test makes it)")
def test_a_runpod_sdk_worker_starts_normally(snap: Snap, tmp_path: Path) -> None:
    r = snap.http.post(
        "/v1/endpoints",
        json={
            "name": "sdk",
            "templateId": "custom",
            "command": f"{RUNPOD_PY} -u {RUNPOD_HANDLER}",
            "flashboot": True,
            "workersMin": 1,
            "workersMax": 1,
            "env": {"PODIUM_TEST_MARKERS": str(tmp_path)},
        },
    )
    ep = r.raise_for_status().json()["id"]
    body = {"input": {"mode": "echo", "value": 4}}
    job = snap.http.post(f"/v2/{ep}/runsync", json=body, params={"wait": 60000}).json()
    assert job["status"] == "COMPLETED", (job, snap.logs(ep))
    [worker] = snap.ready(ep, 1)
    assert job["output"] == {"echo": 4, "jobId": job["id"], "worker": worker["id"]}
    assert "startedFrom" not in worker and snap.images() == []


def test_snapshot_routes(snap: Snap) -> None:
    assert snap.http.get("/v1/snapshots").json() == {"enabled": True, "snapshots": [], "bytes": 0}
    for key in ("nothex", "0" * 23, "../../etc", "A" * 24):
        r = snap.http.delete(f"/v1/snapshots/{key}")
        assert r.status_code in (400, 404) and "error" in r.json(), key
    assert snap.http.delete("/v1/snapshots/" + "0" * 24).status_code == 404
    ep = snap.deploy(workersMin=1)
    snap.snapshot(ep, images=1)
    [image] = snap.images()
    body = {"name": "limited", "scopes": ["admin"], "endpoints": [ep]}
    limited = snap.http.post("/v1/keys", json=body).raise_for_status().json()["key"]
    auth = {"Authorization": f"Bearer {limited}"}
    for method in ("GET", "DELETE"):
        path = "/v1/snapshots" + ("" if method == "GET" else f"/{image['key']}")
        r = httpx.request(method, snap.gw.url + path, headers=auth)
        assert r.status_code == 403, r.text  # host-wide: not for a key limited to endpoints
    assert snap.images() == [image]
    # the CLI: list (JSON and table), delete
    runner = CliRunner()
    env = {"PODIUM_URL": snap.gw.url, "PODIUM_API_KEY": snap.gw.admin_key}
    r = runner.invoke(app, ["snapshots", "list", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [image]
    r = runner.invoke(app, ["snapshots", "list"], env=env)
    assert r.exit_code == 0 and image["key"] in r.stdout and ep in r.stdout
    r = runner.invoke(app, ["snapshots", "delete", image["key"]], env=env)
    assert r.exit_code == 0, r.output
    assert snap.images() == []
    r = runner.invoke(app, ["snapshots", "delete", image["key"]], env=env)
    assert r.exit_code != 0 and "No snapshot" in r.output


@pytest.mark.sd
def test_tiny_sd_workers_restored_give_identical_images(snap: Snap) -> None:
    """The issue's case: the tiny SD pipeline (torch, diffusers, its weights) built, dumped,
    three copies restored at once; each makes the same image as the original for a seed."""
    r = snap.http.post(
        "/v1/endpoints",
        json={
            "name": "sd",
            "templateId": "sd15",
            "model": "tiny",
            "flashboot": True,
            "workersMin": 1,
            "workersMax": 3,
            "idleTimeout": 1,
            "env": {"OMP_NUM_THREADS": "1"},
        },
    )
    ep = r.raise_for_status().json()["id"]
    body = {"input": {"prompt": "a dog", "width": 64, "height": 64, "num_inference_steps": 2}}
    body["input"]["seed"] = 7

    def image() -> tuple[str, Any]:
        job = snap.http.post(f"/v2/{ep}/runsync", json=body, params={"wait": 120000}).json()
        assert job["status"] == "COMPLETED", job
        return job["workerId"], job["output"]  # [{"image": base64 PNG, "seed": 7}]

    snap.snapshot(ep, timeout=300, images=1)  # torch and diffusers load first
    _, first = image()
    assert first and first[0]["seed"] == 7 and len(first[0]["image"]) > 100  # a PNG
    snap.to_zero(ep)
    snap.scale(ep, 3)
    workers = snap.ready(ep, 3)
    assert all(w.get("startedFrom") == "snapshot" for w in workers)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        made = list(pool.map(lambda _: image(), range(6)))
    assert {wid for wid, _ in made} <= {w["id"] for w in workers}
    assert all(img == first for _, img in made)


def test_a_gateway_killed_takes_its_workers_and_the_next_restores_its_images(
    tmp_path: Path, handler: Path
) -> None:
    gw = _gateway(tmp_path).start()
    s = Snap(gw, handler)
    try:
        ep = s.deploy(workersMin=1, workersMax=2)
        s.snapshot(ep, images=1, taken=1)
        s.to_zero(ep)
        s.scale(ep, 2)
        pids = [w["pid"] for w in s.ready(ep, 2)]
        assert all(isinstance(p, int) for p in pids)
        gw.kill9()
        # restored workers are the gateway's children: they die with it (no orphan)
        wait_until(lambda: not any(_alive(p) for p in pids), timeout=10, what="workers gone")
        gw.start()  # the same data dir: the image is still valid
        workers = s.ready(ep, 2)
        assert all(w.get("startedFrom") == "snapshot" for w in workers), workers
        assert s.job(ep, [9])["output"]["sum"] == _expected_sum([9])
    finally:
        s.http.close()
        gw.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
