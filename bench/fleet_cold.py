"""Cold start per fleet backend: `/run` on an endpoint with zero workers -> COMPLETED, on
`local`, on `ray`, as a `container` (the local fleet, the worker in a container of an
image already on this host) and `snapshot` (the local fleet, flashboot: the worker
restored from its CRIU snapshot, docs/snapshots.md), split into placement, process start,
model load and first job.

Every figure comes from timestamps the system records (no log parsing, no probe):

    created     the job's createdAt (GET /v2/{ep}/requests, the job history)
    launched    the worker's startedAt: when the fleet decided to start it and asked its
                backend (GET /v1/endpoints/{ep}/workers)
    exec        the worker process began (startup.execAt: the kernel's record, reported
                by Podium's runtime on its pings)
    booted      the runtime was up, about to build the handler (startup.bootedAt)
    loaded      the handler was built: imports done, model loaded (startup.loadedAt)
    taken       createdAt + delayTime;  done: taken + executionTime

    placement      created -> exec   (= decide: created -> launched, + place: launched ->
                                      exec; for ray, the actor's scheduling and start)
    process start  exec -> booted    (the interpreter, Podium's worker imports)
    model load     booted -> loaded  (the handler's imports, e.g. torch + diffusers, and
                                      its model)
    first job      loaded -> done    (first poll and take, the job itself, its result)

Each run deploys a fresh endpoint (workersMin 0, workersMax 1, a long idleTimeout), sends
one job, waits for COMPLETED, reads the records, deletes the endpoint. `snapshot` keeps
one flashboot endpoint (idleTimeout 1 s): its first run starts the program and takes the
snapshot, each later run waits for the worker to stop and restores it; the ratio line
compares its median with `started`'s: fresh endpoints without flashboot on the same
gateway, each run just before a restored one (needs root and CRIU >= 4). The
first run of a case warms the page cache (and, for tiny, builds and caches the model); it
is shown apart from the median of the others.

    .venv/bin/python bench/fleet_cold.py                        # all three, noop and tiny
    .venv/bin/python bench/fleet_cold.py --fleets local,container --cases noop --runs 6
    .venv/bin/python bench/fleet_cold.py --json out.json

`ray` starts a one-node Ray cluster of its own (`ray start --head --block`, two fake
GPUs for the endpoints' gpuCount 1, its own port and temp dir, ended by process id) and a
gateway with `--fleet ray` joined to it; it is skipped, saying why, where ray or Podium's
ray backend is not installed. One machine: both backends place the worker on this host,
so `place` shows Ray's own cost (actor scheduling, its worker process) rather than a
network. `container` runs the same no-op handler with the same runtime (`python -m
podium.worker /handlers/noop.py:handler`) in an image of this checkout's Podium on Debian
bookworm's Python (tests/images.podium_image: built through Podman on first use, about
30 s, then reused); `place` then holds the engine's `run` (runc, the image's layers,
`--init`) up to the worker's exec. Its cases: noop only (the image has no torch). It is
skipped, saying why, without Podman. `exec` is known to the kernel's tick (10 ms). Prints
tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from cold_start import CASES, NOOP, machine
from podium.settings import ADMIN_KEY_FILE

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
RAY = str(Path(PY).with_name("ray"))
FLEETS = ("local", "ray", "container", "snapshot")
CONTAINER_CASES = ("noop",)  # the image has Podium's runtime, not torch
BENCH_CASES = ("noop", "tiny")
TICK_S = "0.1"
WAIT_S = 900.0


@dataclass
class Run:
    fleet: str
    case: str
    run: int
    total: float  # created -> done
    decide: float  # created -> launched
    place: float  # launched -> exec
    process_start: float  # exec -> booted
    model_load: float  # booted -> loaded
    first_job: float  # loaded -> done
    execution: float  # the job's executionTime
    client_total: float  # the client's clock: before POST /run -> COMPLETED seen
    restored: bool = False  # its worker was restored from a snapshot

    @property
    def placement(self) -> float:
        return self.decide + self.place


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def _final(c: httpx.Client, ep: str, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        s = c.get(f"/v2/{ep}/status/{job}", params={"wait": 5000}, timeout=30).json()
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return s
    raise RuntimeError(f"job {job} not done after {WAIT_S:g} s")


def _spec(fleet: str, case: str, i: int, noop: Path, image: str | None) -> dict[str, Any]:
    spec = {
        "name": f"cold-{fleet}-{case}-{i}",
        "workersMin": 0,
        "workersMax": 1,
        "idleTimeout": 3600,
        **CASES[case]["spec"],
    }
    if image is not None:  # the same runtime and handler, in the image
        spec.pop("templateId", None)
        spec["imageName"] = image
        spec["command"] = "/venv/bin/python -m podium.worker /handlers/noop.py:handler"
    elif case == "noop":
        spec["command"] = f"{PY} -m podium.worker {noop}:handler"
    return spec


def cold_run(
    c: httpx.Client, fleet: str, case: str, i: int, noop: Path, image: str | None = None
) -> Run:
    ep = c.post("/v1/endpoints", json=_spec(fleet, case, i, noop, image)).raise_for_status()
    try:
        return measure(c, fleet, case, i, ep.json()["id"])
    finally:
        c.delete(f"/v1/endpoints/{ep.json()['id']}")


def snapshot_runs(c: httpx.Client, case: str, runs: int, noop: Path) -> list[Run]:
    """One flashboot endpoint (idleTimeout 1 s): its first cold start runs the program and
    is checkpointed; each later one, once the worker has gone idle and stopped, restores
    it (docs/snapshots.md). Each restored run follows a started one on the same gateway
    (`started`: a fresh endpoint without flashboot): both kinds see the same machine, as
    this VM's CPUs slow down under sustained load."""
    spec = {**_spec("snapshot", case, 0, noop, None), "flashboot": True, "idleTimeout": 1}
    ep = c.post("/v1/endpoints", json=spec).raise_for_status().json()["id"]
    out = []
    try:
        for i in range(runs):
            print(f"[snapshot] {case} run {i + 1}/{runs} ...", file=sys.stderr, flush=True)
            out.append(cold_run(c, "started", case, i, noop))
            _wait(lambda: not c.get(f"/v1/endpoints/{ep}/workers").json()["workers"], 120,
                  "the endpoint's worker to stop")  # fmt: skip
            run = measure(c, "snapshot", case, i, ep)
            if i > 0 and not run.restored:
                logs = c.get(f"/v1/endpoints/{ep}/logs", params={"tail": 20}).json()["lines"]
                said = "\n".join(line["text"] for line in logs)
                raise RuntimeError(f"run {i} was not restored; the worker's log:\n{said}")
            out.append(run)
    finally:
        c.delete(f"/v1/endpoints/{ep}")
    return out


def measure(c: httpx.Client, fleet: str, case: str, i: int, ep: str) -> Run:
    """One job on `ep` (no worker running): its cold start, from the records."""
    t0 = time.time()
    job = c.post(f"/v2/{ep}/run", json={"input": CASES[case]["input"]}).raise_for_status()
    status = _final(c, ep, job.json()["id"])
    client_total = time.time() - t0
    if status["status"] != "COMPLETED":
        raise RuntimeError(f"{fleet}/{case}: the job ended {status['status']}: {status}")
    records = c.get(f"/v2/{ep}/requests").raise_for_status().json()["requests"]
    [record] = [r for r in records if r["id"] == job.json()["id"]]

    def seen_ready() -> dict[str, Any] | None:
        """The job's worker once the fleet has published it ready (a restored worker can
        finish its job before the fleet's next pass)."""
        found = c.get(f"/v1/endpoints/{ep}/workers").raise_for_status().json()["workers"]
        mine = [w for w in found if w["id"] == record["workerId"] and w["readyAt"]]
        return mine[0] if mine else None

    worker = _wait(seen_ready, 30, f"worker {record['workerId']} shown ready")
    up = worker["startup"]
    if up is None or up["execAt"] is None:
        raise RuntimeError(f"worker {worker['id']} reported no startup times: {worker}")
    created = _epoch(record["createdAt"])
    taken = created + record["delayTime"] / 1000
    done = taken + record["executionTime"] / 1000
    launched, exec_at = _epoch(worker["startedAt"]), _epoch(up["execAt"])
    booted, loaded = _epoch(up["bootedAt"]), _epoch(up["loadedAt"])
    return Run(
        fleet=fleet,
        case=case,
        run=i,
        total=done - created,
        decide=launched - created,
        place=exec_at - launched,
        process_start=booted - exec_at,
        model_load=loaded - booted,
        first_job=done - loaded,
        execution=record["executionTime"] / 1000,
        client_total=client_total,
        restored=worker.get("startedFrom") == "snapshot",
    )


@contextlib.contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> Iterator[Any]:
    """A process in its own session, ended (the whole session) by its id."""
    with log.open("ab") as log_out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            argv, stdout=log_out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def container_unavailable() -> str | None:
    sys.path.insert(0, str(REPO))
    from tests.images import unavailable

    return unavailable()


def snapshot_unavailable() -> str | None:
    from podium.fleet.snapshots import find_criu

    if find_criu() is None:
        return "no CRIU >= 4 or not root (tools/build-criu.sh builds it)"
    return None


def ray_unavailable() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (pip install -e '.[ray]')"
    if importlib.util.find_spec("podium.fleet.raycluster") is None:
        return "this checkout has no ray fleet backend (podium.fleet.raycluster)"
    if not Path(RAY).exists():
        return f"the ray command is not beside {PY}"
    return None


@contextlib.contextmanager
def ray_head(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """A one-node Ray cluster of our own; its address."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="pbray", dir="/tmp"))  # Unix socket paths: short
    argv = [
        RAY, "start", "--block", "--head", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=4", "--num-gpus=2",
        "--include-dashboard=false", f"--temp-dir={temp}",
        f"--object-store-memory={80 * 1000 * 1000}",
    ]  # fmt: skip
    address = f"127.0.0.1:{port}"
    probe = f"import ray; ray.init(address={address!r}, logging_level='ERROR'); print('up')"
    try:
        log = tmp / "ray-head.log"
        with _process(argv, log, {**env, "RAY_USAGE_STATS_ENABLED": "0"}, tmp) as head:

            def up() -> bool:
                if head.poll() is not None:
                    raise RuntimeError(f"the Ray head exited: {log.read_text()[-2000:]}")
                probe_run = subprocess.run(
                    [PY, "-c", probe], capture_output=True, text=True, env=env, timeout=60
                )
                return "up" in probe_run.stdout

            _wait(up, 120, f"the Ray head on {address} (log: {log})")
            yield address
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def gateway(fleet: str, tmp: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    data, port = tmp / f"data-{fleet}", _free_port()
    argv = [
        PY, "-m", "podium.cli", "serve", "--port", str(port), "--data-dir", str(data),
        "--supervisor-tick-s", TICK_S, "--no-rate-limits",
    ]  # fmt: skip
    if fleet == "ray":
        argv += ["--fleet", "ray"]
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    with _process(argv, tmp / f"gateway-{fleet}.log", env, tmp):
        _wait(up, 120, f"the {fleet} gateway (log: {tmp / f'gateway-{fleet}.log'})")
        key = (data / ADMIN_KEY_FILE).read_text().strip()
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            c.get("/v1/gpus", timeout=120).raise_for_status()  # GPU discovery, once, first
            yield c


def run_fleet(fleet: str, cases: list[str], runs: int, tmp: Path, noop: Path) -> list[Run]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    env.pop("RAY_ADDRESS", None)
    image = None
    if fleet == "container":
        sys.path.insert(0, str(REPO))
        from tests.images import engine_env, podium_image

        env.update(engine_env())
        image = podium_image({"noop.py": NOOP})
        cases = [c for c in cases if c in CONTAINER_CASES]
    out: list[Run] = []
    with contextlib.ExitStack() as stack:
        if fleet == "ray":
            env["RAY_ADDRESS"] = stack.enter_context(ray_head(tmp, env))
        c = stack.enter_context(gateway(fleet, tmp, env))
        for case in cases:
            if fleet == "snapshot":
                out += snapshot_runs(c, case, runs, noop)
                continue
            for i in range(runs):
                print(f"[{fleet}] {case} run {i + 1}/{runs} ...", file=sys.stderr, flush=True)
                out.append(cold_run(c, fleet, case, i, noop, image))
    return out


def versions() -> dict[str, str]:
    info = machine()
    for package in ("podium", "ray"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def table(results: list[Run]) -> str:
    cols = ["total", "placement", "decide", "place", "process_start", "model_load", "first_job"]
    lines = [
        "| fleet | case | runs | " + " | ".join(c.replace("_", " ") for c in cols)
        + " | executionTime | client total |",
        "|---|---|---|" + "---:|" * (len(cols) + 2),
    ]  # fmt: skip
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in results:
        groups.setdefault((r.fleet, r.case), []).append(r)
    medians: dict[tuple[str, str], list[float]] = {}
    for (fleet, case), rs in groups.items():
        shown = [("first", rs[:1]), (f"median of {len(rs) - 1}", rs[1:])] if len(rs) > 1 else [
            ("1", rs)
        ]  # fmt: skip
        for label, group in shown:
            vals = [statistics.median(getattr(r, c) for r in group) for c in cols]
            extra = [statistics.median(r.execution for r in group)]
            extra.append(statistics.median(r.client_total for r in group))
            medians[fleet, case] = [*vals, *extra]  # the last group: the median of the rest
            lines.append(
                f"| {fleet} | {case} | {label} | "
                + " | ".join(f"{v:.2f}" for v in [*vals, *extra])
                + " |"
            )
    for (fleet, case), vals in medians.items():  # each against the yardstick, `local`
        base = medians.get(("local", case))
        if fleet == "local" or base is None:
            continue
        lines.append(
            f"| {fleet} − local | {case} | medians | "
            + " | ".join(f"{v - b:+.2f}" for v, b in zip(vals, base, strict=True))
            + " |"
        )
    for (fleet, case), vals in medians.items():  # restored vs started: the ratio
        base = medians.get(("started", case))
        if fleet == "snapshot" and base is not None and vals[0] > 0:
            lines.append(
                f"\n{case}: started {base[0]:.2f} s / restored {vals[0]:.2f} s = "
                f"{base[0] / vals[0]:.1f}× (medians of created -> done, runs interleaved)"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--fleets", default=",".join(FLEETS), help="comma-separated: " + ", ".join(FLEETS)
    )
    ap.add_argument("--cases", default=",".join(BENCH_CASES), help="noop, tiny, sd15-random")
    ap.add_argument("--runs", type=int, default=4, help="cold starts per case (default 4)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    fleets = [f for f in args.fleets.split(",") if f]
    cases = [c for c in args.cases.split(",") if c]
    if bad := sorted(set(fleets) - set(FLEETS)):
        ap.error(f"unknown fleet(s) {', '.join(bad)}; pick from {', '.join(FLEETS)}")
    if bad := sorted(set(cases) - set(CASES)):
        ap.error(f"unknown case(s) {', '.join(bad)}; pick from {', '.join(CASES)}")
    if not 1 <= args.runs <= 50:
        ap.error(f"--runs must be 1 to 50, got {args.runs}")

    tmp = Path(tempfile.mkdtemp(prefix="podium-fleet-cold-"))
    noop = tmp / "noop.py"
    noop.write_text(NOOP)
    results: list[Run] = []
    skipped: dict[str, str] = {}
    try:
        for fleet in fleets:
            why = {
                "ray": ray_unavailable,
                "container": container_unavailable,
                "snapshot": snapshot_unavailable,
            }.get(fleet, lambda: None)()
            if why is not None:
                skipped[fleet] = why
                print(f"[{fleet}] skipped: {why}", file=sys.stderr)
                continue
            results += run_fleet(fleet, cases, args.runs, tmp, noop)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    info = versions()
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"supervisor tick {TICK_S} s; one worker per endpoint; seconds\n")
    print(table(results))
    for fleet, why in skipped.items():
        print(f"\n{fleet}: not run ({why})")
    if args.json:
        payload = {"machine": info, "skipped": skipped, "runs": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
