"""Cold start of a RunPod SDK worker as a container against the same worker as a process:
`/run` on an endpoint with zero workers -> COMPLETED, on the local fleet, the image already
on the host. (Podium's own runtime in a container: bench/fleet_cold.py --fleets container.)

Both cases run the same unmodified RunPod SDK worker (tests/images/handlers/echo.py,
runpod 1.12.0): as a process (`custom`, the SDK's own venv, .venv-runpod) — the yardstick —
and as a container of the test image (tests/images: Debian bookworm's Python, the same SDK
and handler) through Podman. Every figure comes from the gateway's records:

    decide        created -> launched   (the job's createdAt -> the worker's startedAt: the
                                         supervisor's pass that chose to start it)
    start         launched -> taken     (the worker's start: for a container, the engine's
                                         `run` (runc, the image's layers, --init), then
                                         the interpreter, the SDK's imports, its first poll)
    job           the job's executionTime
    total         created -> done       (as RunPod counts a cold start's delay + execution)
    client total  the client's clock: before POST /run -> COMPLETED seen

Each run deploys a fresh endpoint (workersMin 0, workersMax 1), sends one job, waits for
COMPLETED, reads the records and deletes the endpoint. The first run of each case is shown
apart (page cache, the image's first start); the median of the others beside it. The
engine's floor — `podman run --rm IMAGE python3 -c pass` against `python3 -c pass` on the
host — says how much of the difference is the engine itself.

    .venv/bin/python bench/container_cold.py                 # 6 runs per case
    .venv/bin/python bench/container_cold.py --runs 11 --json out.json

Needs Podman (make test installs it); builds the test image on first use (a minute or two;
later runs reuse it). Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from fleet_cold import _epoch, _final, gateway, versions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.images: how the test image is made

from tests.images import engine_env, runpod_image, unavailable  # noqa: E402

RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
HANDLER = REPO / "tests" / "images" / "handlers" / "echo.py"
CASES = ("process", "container")


@dataclass
class Run:
    case: str
    run: int
    total: float
    decide: float
    start: float
    job: float
    client_total: float


def cold_run(c: httpx.Client, case: str, i: int, image: str) -> Run:
    spec: dict[str, Any] = {
        "name": f"cold-{case}-{i}",
        "workersMin": 0,
        "workersMax": 1,
        "idleTimeout": 3600,
    }
    if case == "process":
        spec |= {"templateId": "custom", "command": f"{RUNPOD_PY} -u {HANDLER}"}
    else:
        spec |= {"imageName": image}  # its CMD: python -u /handlers/echo.py
    ep = c.post("/v1/endpoints", json=spec).raise_for_status().json()["id"]
    try:
        t0 = time.time()
        job = c.post(f"/v2/{ep}/run", json={"input": {"n": i}}).raise_for_status()
        status = _final(c, ep, job.json()["id"])
        client_total = time.time() - t0
        if status["status"] != "COMPLETED":
            raise RuntimeError(f"{case}: the job ended {status['status']}: {status}")
        [record] = c.get(f"/v2/{ep}/requests").raise_for_status().json()["requests"]
        workers = c.get(f"/v1/endpoints/{ep}/workers").raise_for_status().json()["workers"]
        worker = next(w for w in workers if w["id"] == record["workerId"])
        created = _epoch(record["createdAt"])
        taken = created + record["delayTime"] / 1000
        launched = _epoch(worker["startedAt"])
        return Run(
            case=case,
            run=i,
            total=(record["delayTime"] + record["executionTime"]) / 1000,
            decide=launched - created,
            start=taken - launched,
            job=record["executionTime"] / 1000,
            client_total=client_total,
        )
    finally:
        c.delete(f"/v1/endpoints/{ep}")


def floor(image: str, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall seconds of a bare interpreter: on the host, and in a container."""
    podman = shutil.which("podman", path=env.get("PATH")) or "podman"
    commands = {
        "host: python3 -c pass": ["python3", "-c", "pass"],
        "podman run --rm --init --network host IMAGE python3 -c pass": [
            podman, "run", "--rm", "--init", "--network", "host", "--pull", "never",
            image, "python3", "-c", "pass",
        ],
    }  # fmt: skip
    out: dict[str, float] = {}
    for label, argv in commands.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
            times.append(time.perf_counter() - t0)
        out[label] = statistics.median(times[1:] if len(times) > 1 else times)
    return out


def table(results: list[Run]) -> str:
    cols = ["total", "decide", "start", "job", "client_total"]
    lines = [
        "| case | runs | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    medians: dict[str, dict[str, float]] = {}
    for case in CASES:
        rs = [r for r in results if r.case == case]
        if not rs:
            continue
        groups = [("first", rs[:1]), (f"median of {len(rs) - 1}", rs[1:])] if len(rs) > 1 else [
            ("1", rs)
        ]  # fmt: skip
        for label, group in groups:
            vals = {c: statistics.median(getattr(r, c) for r in group) for c in cols}
            medians[case] = vals
            lines.append(
                f"| {case} | {label} | " + " | ".join(f"{vals[c]:.2f}" for c in cols) + " |"
            )
    if {"process", "container"} <= set(medians):
        p, k = medians["process"], medians["container"]
        lines.append(
            "| container − process | (medians) | "
            + " | ".join(f"{k[c] - p[c]:+.2f}" for c in cols)
            + " |"
        )
        lines.append(
            "| container ÷ process | (medians) | "
            + " | ".join(f"{k[c] / p[c]:.2f}×" if p[c] > 0 else "–" for c in cols)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=6, help="cold starts per case (default 6)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if not 2 <= args.runs <= 50:
        ap.error(f"--runs must be 2 to 50, got {args.runs}")
    if (why := unavailable()) is not None:
        print(f"not run: {why}", file=sys.stderr)
        return 1
    if not RUNPOD_PY.exists():
        print(f"not run: {RUNPOD_PY} is missing (make .venv-runpod)", file=sys.stderr)
        return 1
    image = runpod_image()
    env = {
        **os.environ,
        **engine_env(),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO / "src"),
        "PODIUM_GPUS": "none",
    }
    env.pop("RAY_ADDRESS", None)
    tmp = Path(tempfile.mkdtemp(prefix="podium-container-cold-"))
    results: list[Run] = []
    try:
        with gateway("local", tmp, env) as c:
            engine = c.get("/v1/gpus").json().get("containerEngine")
            for i in range(args.runs):  # the cases take turns: drift hits both alike
                for case in CASES:
                    print(f"{case} run {i + 1}/{args.runs} ...", file=sys.stderr, flush=True)
                    results.append(cold_run(c, case, i, image))
        floors = floor(image, env, 6)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    info = {**versions(), "engine": str(engine), "image": image}
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print("supervisor tick 0.1 s; one worker per endpoint; the image already on the host; s\n")
    print(table(results))
    print("\nthe engine's floor (median of 5, after one warm-up):\n")
    print("| command | s |\n|---|---:|")
    for label, seconds in floors.items():
        print(f"| `{label}` | {seconds:.3f} |")
    if args.json:
        payload = {"machine": info, "floor": floors, "runs": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
