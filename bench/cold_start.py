"""Cold and warm start: `/run` on an endpoint with zero workers -> COMPLETED, vs a warm worker.

A real `podium serve` (supervisor on, tick 0.1 s) on 127.0.0.1; one endpoint per case with
workersMin 0, workersMax 1 and a long idleTimeout, so that the cold job's worker stays for
the warm jobs. Cases:

    noop          a custom Podium handler that returns at once (the platform's own cost)
    tiny          sd15 with --model tiny (random weights, ~250 KB), 64x64, 2 steps
    sd15-random   sd15 with the full SD 1.5 architecture, random weights, 128x128, 2 steps

The cold path is split with timestamps from three clocks on one machine: the client
(submit, COMPLETED), the gateway's log (supervisor: process started; worker ready) and the
job's own delayTime/executionTime. "start+imports+load" (spawn -> the runtime's first
log line) is then split again by a probe process that times the same steps in isolation:
interpreter start, Podium's worker imports, the handler's imports, the model load.

    .venv/bin/python bench/cold_start.py                # all three cases
    .venv/bin/python bench/cold_start.py --cases noop,tiny
    .venv/bin/python bench/cold_start.py --json out.json

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from podium.settings import ADMIN_KEY_FILE

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
PROMPT = "A cute fluffy white dog in the style of a Pixar animation 3D drawing."
NOOP = "def handler(job):\n    return {'ok': True}\n"

CASES: dict[str, dict[str, Any]] = {
    "noop": {"spec": {"templateId": "custom"}, "input": {"x": 1}, "warm": 50},
    "tiny": {
        "spec": {"templateId": "sd15", "model": "tiny"},
        "input": {"prompt": PROMPT, "width": 64, "height": 64, "num_inference_steps": 2},
        "warm": 10,
    },
    "sd15-random": {
        "spec": {"templateId": "sd15", "model": "sd15-random"},
        "input": {"prompt": PROMPT, "width": 128, "height": 128, "num_inference_steps": 2},
        "warm": 3,
    },
}

_PROBE = r"""
import json, sys, time
t0 = time.time()
import podium.worker.runtime
t1 = time.time()
model = sys.argv[1]
if model == "noop":
    t2 = t3 = time.time()
else:
    from podium.sd.handler import build
    t2 = time.time()
    build(model)
    t3 = time.time()
print(json.dumps({"podium_imports": t1 - t0, "handler_imports": t2 - t1, "model_load": t3 - t2}))
"""


@dataclass
class Result:
    case: str
    cold_total_s: float = 0.0
    run_to_spawn_s: float = 0.0
    spawn_to_runtime_s: float = 0.0  # process start + imports + model load
    runtime_to_taken_s: float = 0.0
    first_job_s: float = 0.0
    post_to_client_s: float = 0.0
    cold_delay_ms: int = 0
    warm_total_p50_ms: float = 0.0
    warm_exec_p50_ms: float = 0.0
    warm_delay_p50_ms: float = 0.0
    warm_delay_p90_ms: float = 0.0
    warm_jobs: int = 0
    probe: dict[str, float] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float | None:
    m = _LOG_TIME.match(line)
    if not m:
        return None
    return datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _find(path: Path, pattern: str, timeout: float = 5.0) -> float:
    """The timestamp of the first log line containing `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if pattern in line and (t := _stamp(line)) is not None:
                return t
        time.sleep(0.05)
    raise RuntimeError(f"no line with {pattern!r} in {path}")


def _probe(model: str, data_dir: Path) -> dict[str, float]:
    env = {**os.environ, "PODIUM_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO / "src")}
    t0 = time.time()
    subprocess.run([PY, "-c", "pass"], check=True, env=env)
    bare = time.time() - t0
    out = subprocess.run(
        [PY, "-c", _PROBE, model], check=True, env=env, capture_output=True, text=True
    ).stdout
    return {"python_start": bare, **json.loads(out.strip().splitlines()[-1])}


def _final(c: httpx.Client, ep: str, job: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = c.get(f"/v2/{ep}/status/{job}", params={"wait": 5000}, timeout=30).json()
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return s
    raise RuntimeError(f"job {job} not done after {timeout} s")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def run_case(c: httpx.Client, gw_log: Path, data: Path, name: str, noop: Path) -> Result:
    case = CASES[name]
    spec = {
        "name": f"bench-{name}",
        "workersMin": 0,
        "workersMax": 1,
        "idleTimeout": 3600,
        **case["spec"],
    }
    if name == "noop":
        spec["command"] = f"{PY} -m podium.worker {noop}:handler"
    ep = c.post("/v1/endpoints", json=spec).raise_for_status().json()["id"]
    res = Result(name)
    try:
        # cold
        t_submit = time.time()
        job = c.post(f"/v2/{ep}/run", json={"input": case["input"]}).raise_for_status().json()
        s = _final(c, ep, job["id"])
        t_done = time.time()
        if s["status"] != "COMPLETED":
            raise RuntimeError(f"{name}: cold job ended {s['status']}: {s.get('error')}")
        wid = s["workerId"]
        t_spawn = _find(gw_log, f"worker {wid} started for endpoint")
        t_runtime = _find(data / "logs" / ep / f"{wid}.log", f"worker {wid} started:")
        t_taken = t_submit + s["delayTime"] / 1000
        t_exec_end = t_taken + s["executionTime"] / 1000
        res.cold_total_s = t_done - t_submit
        res.run_to_spawn_s = t_spawn - t_submit
        res.spawn_to_runtime_s = t_runtime - t_spawn
        res.runtime_to_taken_s = t_taken - t_runtime
        res.first_job_s = s["executionTime"] / 1000
        res.post_to_client_s = t_done - t_exec_end
        res.cold_delay_ms = s["delayTime"]
        # warm: the worker is idle, long-polling
        totals, delays, execs = [], [], []
        for _ in range(case["warm"]):
            time.sleep(0.05)
            t0 = time.perf_counter()
            job = c.post(f"/v2/{ep}/run", json={"input": case["input"]}).json()
            s = _final(c, ep, job["id"])
            totals.append((time.perf_counter() - t0) * 1000)
            delays.append(s["delayTime"])
            execs.append(s["executionTime"])
        res.warm_jobs = len(totals)
        res.warm_total_p50_ms = statistics.median(totals)
        res.warm_exec_p50_ms = statistics.median(execs)
        res.warm_delay_p50_ms = statistics.median(delays)
        res.warm_delay_p90_ms = _pct(delays, 0.9)
    finally:
        c.delete(f"/v1/endpoints/{ep}")
    return res


def machine() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
    }
    try:
        import diffusers
        import torch

        info["torch"] = torch.__version__
        info["diffusers"] = diffusers.__version__
        info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    except ImportError:
        info["torch"] = "not installed"
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    names = [n for n in args.cases.split(",") if n]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; pick from {', '.join(CASES)}")

    tmp = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    data = tmp / "data"
    noop = tmp / "noop.py"
    noop.write_text(NOOP)
    port = _free_port()
    gw_log = tmp / "gateway.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    with gw_log.open("wb") as log_out:  # the child keeps its own descriptor
        gw = subprocess.Popen(
            [
                PY,
                "-m",
                "podium.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--supervisor-tick-s",
                "0.1",
                "--no-rate-limits",
            ],
            stdout=log_out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
    results: list[Result] = []
    discovery_s, gpus = 0.0, {}
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        key = (data / ADMIN_KEY_FILE).read_text().strip()
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as c:
            t0 = time.perf_counter()
            gpus = c.get("/v1/gpus", timeout=120).raise_for_status().json()
            discovery_s = time.perf_counter() - t0
            for name in names:
                model = CASES[name]["spec"].get("model", "noop")
                print(f"[{name}] probe ...", file=sys.stderr, flush=True)
                if model == "tiny":  # the first load builds and caches it; time the second
                    _probe(model, data)
                probe = _probe(model, data)
                print(f"[{name}] cold + warm ...", file=sys.stderr, flush=True)
                res = run_case(c, gw_log, data, name, noop)
                res.probe = probe
                results.append(res)
    finally:
        gw.terminate()
        try:
            gw.wait(30)
        except subprocess.TimeoutExpired:
            gw.kill()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)

    info = machine()
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"GPU discovery ({gpus.get('source')}, once per gateway, before the first "
        f"worker): {discovery_s:.2f} s"
    )
    print("\nCold start: /run on an endpoint with 0 workers -> COMPLETED (seconds)\n")
    print(
        "| case | cold total | /run → spawn | spawn → runtime up (start+imports+load) "
        "| up → job taken | first job | result → client |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.case} | {r.cold_total_s:.2f} | {r.run_to_spawn_s:.2f} | "
            f"{r.spawn_to_runtime_s:.2f} | {r.runtime_to_taken_s:.2f} | {r.first_job_s:.2f} | "
            f"{r.post_to_client_s:.2f} |"
        )
    print("\nspawn → runtime up, split by a probe process (seconds)\n")
    print(
        "| case | interpreter | Podium worker imports | handler imports (torch, diffusers) "
        "| model load |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in results:
        p = r.probe
        print(
            f"| {r.case} | {p['python_start']:.2f} | {p['podium_imports']:.2f} | "
            f"{p['handler_imports']:.2f} | {p['model_load']:.2f} |"
        )
    print("\nWarm worker (idle, long-polling): one job at a time\n")
    print(
        "| case | jobs | /run → COMPLETED p50 (ms) | executionTime p50 (ms) "
        "| delayTime p50 (ms) | delayTime p90 (ms) | cold / warm |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r.cold_total_s * 1000 / r.warm_total_p50_ms if r.warm_total_p50_ms else 0
        print(
            f"| {r.case} | {r.warm_jobs} | {r.warm_total_p50_ms:.1f} | "
            f"{r.warm_exec_p50_ms:.0f} | {r.warm_delay_p50_ms:.0f} | "
            f"{r.warm_delay_p90_ms:.0f} | {ratio:.0f}× |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "gpu_discovery_s": discovery_s,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
