"""The supervisor with real processes: a `podium serve` gateway on 127.0.0.1 starts, scales,
drains and restarts the workers of `custom` endpoints (tests/fleet/handlers/sleepy.py, and
an unmodified RunPod SDK program), with fake GPU inventories injected by --gpus."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from podium.cli import app
from podium.settings import CLIENT_KEY_FILE
from tests.e2e.conftest import Gateway, free_port, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SLEEPY = f"{sys.executable} -m podium.worker {REPO / 'tests/fleet/handlers/sleepy.py'}:handler"
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
RUNPOD_HANDLER = REPO / "tests" / "runpod_compat" / "handlers" / "sync_handler.py"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
FLEET_ARGS = ["--supervisor-tick-s", "0.2", "--take-hold-s", "2"]


class Fleet:
    """One gateway (with its supervisor) and helpers; endpoints are deleted after each test."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.http = gw.client()
        self.created: list[str] = []

    def deploy(self, **spec: Any) -> str:
        body = {"name": "fleet", "templateId": "custom", "command": SLEEPY, **spec}
        r = self.http.post("/v1/endpoints", json=body)
        assert r.status_code == 200, r.text
        self.created.append(r.json()["id"])
        return r.json()["id"]

    def run(self, ep: str, seconds: float = 1.0, low: bool = False, **inp: Any) -> str:
        body: dict[str, Any] = {"input": {"seconds": seconds, **inp}}
        if low:
            body["policy"] = {"lowPriority": True}
        r = self.http.post(f"/v2/{ep}/run", json=body)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def status(self, ep: str, job: str) -> dict[str, Any]:
        return self.http.get(f"/v2/{ep}/status/{job}").json()

    def final(self, ep: str, job: str, timeout: float = 30.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            s = self.http.get(f"/v2/{ep}/status/{job}", params={"wait": 1000}).json()
            return s if s["status"] in FINAL else None

        return wait_until(done, timeout=timeout, what=f"job {job} final")

    def health(self, ep: str) -> dict[str, int]:
        return self.http.get(f"/v2/{ep}/health").json()["workers"]

    def workers(self, ep: str) -> list[dict[str, Any]]:
        """The supervisor's workers of `ep` (GET /v1/endpoints/{id})."""
        return self.http.get(f"/v1/endpoints/{ep}").json()["workers"]

    def processes(self, ep: str) -> list[int]:
        return [w["pid"] for w in self.workers(ep) if w["pid"] is not None]

    def logs(self, ep: str, tail: int = 200) -> str:
        body = self.http.get(f"/v1/endpoints/{ep}/logs", params={"tail": tail}).json()
        return "".join(line["text"] + "\n" for line in body["lines"])

    def passes_after(self, seconds: float) -> None:
        """Wait until the fleet controller made a pass `seconds` from now or later: what it
        decides then has seen that much time go by (no blind sleep)."""
        goal = time.time() + seconds

        def passed() -> bool:
            stamp = self.http.get("/healthz").json()["fleet"]["lastPassAt"]
            return stamp is not None and datetime.fromisoformat(stamp).timestamp() >= goal

        wait_until(passed, timeout=seconds + 15, what=f"a fleet pass {seconds} s on")

    def cleanup(self) -> None:
        for ep in self.created:
            self.http.delete(f"/v1/endpoints/{ep}")
        self.created.clear()


class Sampler:
    """Samples an endpoint's /health and process count in a thread while a test runs."""

    def __init__(self, fleet: Fleet, ep: str) -> None:
        self.fleet, self.ep = fleet, ep
        self.samples: list[tuple[dict[str, int], int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with self.fleet.gw.client() as c:
            while not self._stop.is_set():
                health = c.get(f"/v2/{self.ep}/health").json()["workers"]
                procs = [
                    w
                    for w in c.get(f"/v1/endpoints/{self.ep}").json()["workers"]
                    if w["pid"] is not None
                ]
                self.samples.append((health, len(procs)))
                time.sleep(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def most_workers(self) -> int:
        """Most workers started at once: by /health (initializing + ready) and processes."""
        return max(max(h["initializing"] + h["ready"], n) for h, n in self.samples)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


@pytest.fixture(scope="module")
def fleet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME with a RunPod config whose key is wrong: workers must never read it."""
    home = tmp_path_factory.mktemp("home")
    (home / ".runpod").mkdir()
    (home / ".runpod" / "config.toml").write_text('[default]\napi_key = "wrong-key"\n')
    return home


@pytest.fixture(scope="module")
def fleet_gw(tmp_path_factory: pytest.TempPathFactory, fleet_home: Path) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("fleet-gw")
    gw = Gateway(data_dir=data, port=free_port(), extra_args=[*FLEET_ARGS, "--gpus", "none"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(fleet_home))
        # No Stable Diffusion weights anywhere: an empty HF cache, and no hub
        mp.setenv("HF_HOME", str(fleet_home / "hf"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def fleet(fleet_gw: Gateway) -> Iterator[Fleet]:
    f = Fleet(fleet_gw)
    try:
        yield f
    finally:
        f.cleanup()
        f.http.close()


def test_a_burst_scales_from_zero_to_max_never_above_and_back_to_zero(fleet: Fleet):
    ep = fleet.deploy(workersMax=3, idleTimeout=1, scalerType="QUEUE_DELAY", scalerValue=0.5)
    assert fleet.health(ep)["ready"] == 0 and fleet.processes(ep) == []
    with Sampler(fleet, ep) as sampler:
        jobs = [fleet.run(ep, seconds=1.0, value=i) for i in range(12)]
        results = [fleet.final(ep, j) for j in jobs]
        wait_until(lambda: not fleet.processes(ep), timeout=15, what="scale to zero")
    assert [r["status"] for r in results] == ["COMPLETED"] * 12
    assert [r["output"]["echo"] for r in results] == list(range(12))
    assert all(r["retries"] == 0 for r in results)  # no job was lost to a scale-down
    assert sampler.most_workers() == 3
    assert len({r["output"]["worker"] for r in results}) == 3
    assert fleet.health(ep) == dict.fromkeys(fleet.health(ep), 0)


def test_workers_min_stay_and_low_priority_jobs_do_not_scale_up(fleet: Fleet):
    warm = fleet.deploy(
        workersMin=1, workersMax=3, idleTimeout=0.5, scalerType="REQUEST_COUNT", scalerValue=1
    )
    cold = fleet.deploy(workersMin=0, workersMax=3, scalerType="REQUEST_COUNT", scalerValue=1)
    wait_until(lambda: fleet.health(warm)["idle"] == 1, timeout=20, what="workersMin ready")
    with Sampler(fleet, warm) as warm_samples, Sampler(fleet, cold) as cold_samples:
        low_warm = [fleet.run(warm, seconds=0.2, low=True) for _ in range(6)]
        low_cold = [fleet.run(cold, seconds=0.2, low=True) for _ in range(3)]
        results = [fleet.final(warm, j) for j in low_warm]
        fleet.passes_after(2.0)  # four idleTimeouts
    assert all(r["status"] == "COMPLETED" for r in results)
    assert len({r["output"]["worker"] for r in results}) == 1
    assert warm_samples.most_workers() == 1
    assert cold_samples.most_workers() == 0
    assert [fleet.status(cold, j)["status"] for j in low_cold] == ["IN_QUEUE"] * 3
    assert fleet.health(warm)["idle"] == 1  # workersMin stays after idleTimeout
    # a normal-priority job does start a worker on the cold endpoint; it serves the queue
    normal = fleet.run(cold, seconds=0.2)
    assert fleet.final(cold, normal)["status"] == "COMPLETED"
    assert all(fleet.final(cold, j)["status"] == "COMPLETED" for j in low_cold)


def test_kill_9_mid_job_restarts_the_worker_and_the_job_completes(fleet: Fleet):
    ep = fleet.deploy(workersMin=1, workersMax=1)
    wait_until(lambda: fleet.health(ep)["idle"] == 1, timeout=20, what="worker ready")
    (before,) = fleet.workers(ep)
    job = fleet.run(ep, seconds=3.0, value="survives")
    wait_until(lambda: fleet.status(ep, job)["status"] == "IN_PROGRESS", what="job running")
    os.kill(before["pid"], signal.SIGKILL)
    wait_until(lambda: fleet.workers(ep)[0]["restarts"] == 1, timeout=10, what="restart")
    result = fleet.final(ep, job, timeout=30)
    assert result["status"] == "COMPLETED" and result["output"]["echo"] == "survives"
    assert result["retries"] == 1
    (after,) = fleet.workers(ep)
    assert after["id"] == before["id"] and after["pid"] != before["pid"]
    wait_until(
        lambda: f"worker {before['id']} exited with code -9" in fleet.logs(ep), what="exit line"
    )


def test_a_worker_that_crashes_at_start_up_ends_unhealthy(fleet: Fleet):
    crash = (
        f"{sys.executable} -c \"import sys; print('boom: no model', file=sys.stderr); sys.exit(3)\""
    )
    ep = fleet.deploy(command=crash, workersMin=1, workersMax=1)
    wait_until(lambda: fleet.health(ep)["unhealthy"] == 1, timeout=20, what="unhealthy")
    (w,) = fleet.workers(ep)
    assert w["phase"] == "unhealthy" and w["pid"] is None and w["restarts"] == 2
    assert "code 3" in w["reason"] and "not restarted" in w["reason"]
    fleet.passes_after(2.0)  # no more restarts: nothing burns the CPU
    (later,) = fleet.workers(ep)
    assert later["restarts"] == 2 and later["pid"] is None
    wait_until(lambda: fleet.logs(ep).count("boom: no model") == 3, what="three runs' lines")
    # `podium logs` shows the same
    runner = CliRunner()
    env = {"PODIUM_URL": fleet.gw.url, "PODIUM_API_KEY": fleet.gw.admin_key}
    r = runner.invoke(app, ["logs", ep, "--tail", "5"], env=env)
    assert r.exit_code == 0 and f"{w['id']} | boom: no model" in r.output
    # updating the endpoint (a fixed command) gives it another chance
    r2 = fleet.http.patch(f"/v1/endpoints/{ep}", json={"command": SLEEPY})
    assert r2.status_code == 200
    wait_until(lambda: fleet.health(ep)["idle"] == 1, timeout=20, what="fixed worker ready")


def test_sd15_auto_without_weights_refuses_to_start_and_says_why(fleet: Fleet):
    """`auto` never serves random noise: no weights, no worker, and the reason shown."""
    r = fleet.http.post(
        "/v1/endpoints",
        json={"name": "no-weights", "templateId": "sd15", "workersMin": 1, "workersMax": 1},
    )
    assert r.status_code == 200, r.text
    ep = r.json()["id"]
    fleet.created.append(ep)
    r = fleet.http.post(f"/v2/{ep}/run", json={"input": {"prompt": "a dog"}})
    job = r.json()["id"]
    wait_until(lambda: fleet.health(ep)["unhealthy"] == 1, timeout=90, what="unhealthy")
    (w,) = fleet.workers(ep)
    assert w["phase"] == "unhealthy" and w["restarts"] == 0  # not restarted: it would not help
    assert "found no Stable Diffusion 1.5 weights" in w["reason"]
    assert "hf download" in w["reason"]
    assert fleet.status(ep, job)["status"] == "IN_QUEUE"  # no image of noise was served
    runner = CliRunner()
    env = {"PODIUM_URL": fleet.gw.url, "PODIUM_API_KEY": fleet.gw.admin_key}
    wait_until(lambda: "found no Stable Diffusion 1.5 weights" in fleet.logs(ep), what="its reason")
    out = runner.invoke(app, ["logs", ep, "--tail", "5"], env=env)
    assert out.exit_code == 0 and "found no Stable Diffusion 1.5 weights" in out.output


def test_scale_down_never_kills_a_running_job(fleet: Fleet):
    ep = fleet.deploy(workersMax=2, idleTimeout=0.3, scalerType="REQUEST_COUNT", scalerValue=1)
    long_job = fleet.run(ep, seconds=5.0, value="long")
    short_job = fleet.run(ep, seconds=0.1, value="short")
    short = fleet.final(ep, short_job)
    wait_until(lambda: fleet.status(ep, long_job)["status"] == "IN_PROGRESS", what="long job")
    long_worker = fleet.status(ep, long_job)["workerId"]
    if short["workerId"] != long_worker:  # the usual case: the short job's worker drains
        wait_until(
            lambda: [w["id"] for w in fleet.workers(ep)] == [long_worker],
            timeout=10,
            what="the idle worker drained",
        )
    result = fleet.final(ep, long_job)
    assert result["status"] == "COMPLETED" and result["output"]["echo"] == "long"
    assert result["retries"] == 0 and result["workerId"] == long_worker
    wait_until(lambda: "SIGTERM: taking no more jobs" in fleet.logs(ep), what="the drain line")


@pytest.mark.runpod
def test_an_unmodified_runpod_sdk_worker_serves_jobs(fleet: Fleet, tmp_path: Path):
    if not RUNPOD_PY.exists():
        pytest.skip(f"the runpod SDK venv is missing ({RUNPOD_PY})")
    ep = fleet.deploy(
        command=f"{RUNPOD_PY} {RUNPOD_HANDLER}",
        workersMax=1,
        env={"PODIUM_TEST_MARKERS": str(tmp_path)},
    )
    job = fleet.http.post(f"/v2/{ep}/run", json={"input": {"mode": "echo", "value": 42}}).json()
    result = fleet.final(ep, job["id"], timeout=60)
    assert result["status"] == "COMPLETED", (result, fleet.logs(ep))
    (w,) = fleet.workers(ep)
    assert result["output"] == {"echo": 42, "jobId": job["id"], "worker": w["id"]}
    r = fleet.http.post(
        f"/v2/{ep}/runsync", json={"input": {"mode": "raise", "message": "bad input"}}
    )
    assert r.json()["status"] == "FAILED" and "bad input" in r.json()["error"]


def test_deleting_an_endpoint_stops_its_workers_and_refuses_jobs(fleet: Fleet):
    ep = fleet.deploy(workersMin=2, workersMax=2)
    wait_until(lambda: fleet.health(ep)["idle"] == 2, timeout=20, what="two workers ready")
    pids = fleet.processes(ep)
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert fleet.http.delete(f"/v1/endpoints/{ep}").status_code == 200
    r = fleet.http.post(f"/v2/{ep}/run", json={"input": {}})
    assert r.status_code == 404
    wait_until(lambda: not any(_alive(p) for p in pids), timeout=10, what="workers gone")


def test_cli_deploy_show_update_delete(fleet: Fleet):
    runner = CliRunner()
    env = {"PODIUM_URL": fleet.gw.url, "PODIUM_API_KEY": fleet.gw.admin_key}

    def cli(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    r = cli(
        "deploy",
        "custom",
        "--name",
        "cli-ep",
        "--command",
        SLEEPY,
        "--workers-max",
        "2",
        "--idle-timeout",
        "1",
        "--env",
        "FLEET_TEST_VAR=from-cli",
        "--json",
    )
    assert r.exit_code == 0, r.output
    ep = json.loads(r.output)
    fleet.created.append(ep["id"])
    assert ep["url"] == f"{fleet.gw.url}/v2/{ep['id']}" and ep["workersMax"] == 2
    job = fleet.run(ep["id"], seconds=0.1)
    assert fleet.final(ep["id"], job)["output"]["extra"] == "from-cli"
    r = cli("deploy", "sd15", "--model", "tiny", "--gpu", "24GB")
    assert r.exit_code == 0, r.output
    assert "Deployed endpoint" in r.output and "/runsync" in r.output
    assert "A cute fluffy white dog" in r.output and "curl -X POST" in r.output
    sd_id = r.output.split("Deployed endpoint ")[1].split()[0]
    fleet.created.append(sd_id)
    r = cli(
        "endpoints",
        "update",
        ep["id"],
        "--workers-min",
        "1",
        "--scaler-type",
        "REQUEST_COUNT",
        "--scaler-value",
        "2",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["workersMin"] == 1
    r = cli("endpoints", "update", ep["id"], "--workers-min", "5")
    assert r.exit_code == 1 and "must not exceed" in r.output
    r = cli("endpoints", "show", ep["id"], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["scalerType"] == "REQUEST_COUNT"
    r = cli("endpoints", "show", ep["id"])
    assert r.exit_code == 0 and "cli-ep" in r.output
    r = cli("endpoints", "list")
    assert r.exit_code == 0 and ep["id"] in r.output
    r = cli("deploy", "nope")
    assert r.exit_code == 1 and "unknown `templateId`" in r.output
    r = cli("endpoints", "delete", sd_id)
    assert r.exit_code == 0
    r = cli("endpoints", "show", sd_id)
    assert r.exit_code == 1 and "404" in r.output


def test_fake_gpus_one_per_worker_and_throttled_when_none_is_free(tmp_path: Path):
    gw = Gateway(
        data_dir=tmp_path / "gpu-gw",
        port=free_port(),
        extra_args=[*FLEET_ARGS, "--gpus", "0, Fake GPU A, 24564; 1, Fake GPU B, 24564"],
    )
    gw.data_dir.mkdir()
    gw.start()
    fleet = Fleet(gw)
    try:
        a = fleet.deploy(workersMin=1, workersMax=1, gpuIds="1")
        b = fleet.deploy(workersMin=2, workersMax=2)
        wait_until(
            lambda: (
                fleet.health(b)["throttled"] == 1
                and fleet.health(b)["idle"] == 1
                and fleet.health(a)["idle"] == 1
            ),
            timeout=20,
            what="one throttled",
        )
        (wa,) = fleet.workers(a)
        assert wa["gpus"] == [1]
        assert [w["gpus"] for w in fleet.workers(b) if w["phase"] == "ready"] == [[0]]
        throttled = next(w for w in fleet.workers(b) if w["phase"] == "throttled")
        assert "held by another worker" in throttled["reason"]
        out = fleet.final(a, fleet.run(a, seconds=0.1))["output"]
        assert out["cuda"] == "1" and out["worker"] == wa["id"]
        gpus = fleet.http.get("/v1/gpus").json()
        assert [(g["index"], g["worker"] is not None) for g in gpus["gpus"]] == [
            (0, True),
            (1, True),
        ]
        # endpoint a goes: its GPU passes to b's throttled worker
        fleet.http.delete(f"/v1/endpoints/{a}")
        wait_until(lambda: fleet.health(b)["idle"] == 2, timeout=20, what="throttled one starts")
        assert sorted(w["gpus"] for w in fleet.workers(b)) == [[0], [1]]
    finally:
        fleet.cleanup()
        fleet.http.close()
        gw.stop()


def test_podium_up_creates_then_reuses_the_sd15_endpoint(tmp_path: Path):
    port = free_port()
    data = tmp_path / "up"
    url = f"http://127.0.0.1:{port}"
    args = [
        sys.executable,
        "-m",
        "podium.cli",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers-min",
        "0",
        "--gpus",
        "none",
        "--model",
        "tiny",
    ]
    outputs = []
    for _ in range(2):
        log = tmp_path / f"up-{len(outputs)}.log"
        gw = Gateway(data_dir=data, port=port)
        import subprocess

        with log.open("wb") as log_out:  # the child keeps its own descriptor
            gw.proc = subprocess.Popen(
                args,
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
            )
        gw.log_path = log
        try:
            wait_until(gw._up, timeout=20, what="podium up")
            outputs.append(log.read_text())
            key = (data / CLIENT_KEY_FILE).read_text().strip()
            ep_id = outputs[-1].split("endpoint  ")[1].split()[0]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
                assert c.get(f"/v2/{ep_id}/health").status_code == 200
                assert c.get("/v1/endpoints").status_code == 403  # a run key, not admin
        finally:
            gw.stop()
    first, second = outputs
    ep1 = first.split("endpoint  ")[1].split()[0]
    ep2 = second.split("endpoint  ")[1].split()[0]
    assert ep1 == ep2 and "reused" in second and "reused" not in first
    assert f"{url}/v2/{ep1}/runsync" in first and "A cute fluffy white dog" in first
    key = (data / CLIENT_KEY_FILE).read_text().strip()
    assert key in first and key in second
    assert "Admin API key" in first and "Admin API key" not in second
