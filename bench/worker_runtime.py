"""Worker runtimes side by side on one gateway, in one run: what a worker costs per job.

    .venv/bin/python bench/worker_runtime.py                  # SQLite and Redis, full run
    .venv/bin/python bench/worker_runtime.py --quick          # ~1.5-minute smoke run
    .venv/bin/python bench/worker_runtime.py --store sqlite --no-runpod
    .venv/bin/python bench/worker_runtime.py --py-spy DIR     # profile Podium's workers

Runtimes (each on an endpoint of its own, on the same `podium serve` gateway):
    bare     bench/_load.py worker: a sync httpx loop (take -> job-done -> take), no
             handler: the cost of the protocol itself, the ceiling
    podium   `python -m podium.worker bench/runtime_handlers.py:noop` (Podium's runtime)
    runpod   `runpod.serverless.start` 1.12 from .venv-runpod, by RUNPOD_* env vars alone

Scenarios (per store):
    runsync       one worker idle on its long-poll; sequential no-op `/runsync` calls
                  (p50/p99, client's wall time)
    drain 4x1     4 worker processes; N jobs submitted at 32 connections while they drain
                  (completed jobs/s, first submit -> last COMPLETED, as control_plane.py)
    drain 1x4     one worker process with concurrency 4 (bare: 4 processes, the ceiling)
    stream        the generator handler (3 chunks, each a job-stream post, then job-done
                  isStream=true): runsync p50/p99 and drain 4x1

Runtimes take turns (bare, podium, bare, podium, ... `repeats` times; the median is shown);
the runpod SDK runs once with fewer jobs (it waits ~1 s between takes). The ratio columns
are podium / bare: the targets are runsync p50 <= 1.25x and drain >= 0.8x.

Every target is 127.0.0.1, every loop bounded; the Redis run uses db 13 under a fresh key
prefix and deletes its keys at the end. Prints a table with the machine and versions;
asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.table import Table

from control_plane import (
    JOB_BODY,
    WORKER_HOLD_S,
    Conn,
    CpuWatch,
    Gateway,
    Latency,
    _expect,
    _version,
    clean_env,
    console,
    delete_prefix,
    drain,
    environment,
    spawn,
    stop,
    wait_until,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HANDLERS = HERE / "runtime_handlers.py"
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"  # as tests/runpod_compat finds it
REDIS_URL = "redis://127.0.0.1:6379/13"
RUNTIMES = ("bare", "podium", "runpod")
RUNSYNC_WARMUP = 3


@dataclass(frozen=True, slots=True)
class Plan:
    latency_jobs: int
    drain_jobs: int
    repeats: int
    runpod_latency_jobs: int
    runpod_drain_jobs: int


FULL = Plan(
    latency_jobs=300, drain_jobs=1500, repeats=3, runpod_latency_jobs=8, runpod_drain_jobs=60
)
QUICK = Plan(
    latency_jobs=60, drain_jobs=400, repeats=1, runpod_latency_jobs=4, runpod_drain_jobs=24
)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: str  # "noop" | "stream"
    processes: int
    concurrency: int  # per process
    latency: bool  # measure runsync (1 worker) instead of a drain


SCENARIOS = [
    Scenario("runsync", "noop", 1, 1, True),
    Scenario("drain 4x1", "noop", 4, 1, False),
    Scenario("drain 1x4", "noop", 1, 4, False),
    Scenario("stream runsync", "stream", 1, 1, True),
    Scenario("stream drain 4x1", "stream", 4, 1, False),
]


@dataclass
class Cell:
    latencies: list[Latency] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # worker CPU per job
    error: str | None = None

    def cpu(self) -> float | None:
        return statistics.median(self.cpu_ms) if self.cpu_ms else None

    def p50(self) -> float | None:
        return statistics.median(x.p50_ms for x in self.latencies) if self.latencies else None

    def p99(self) -> float | None:
        return statistics.median(x.p99_ms for x in self.latencies) if self.latencies else None

    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


# --- worker processes ----------------------------------------------------------------


def _worker_env(gw: Gateway, endpoint: dict[str, Any], worker_id: str, home: Path) -> dict:
    base = f"{gw.url}/v2/{endpoint['id']}"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **clean_env(),
        "HOME": str(home),  # no ~/.runpod/config.toml
        "PYTHONPATH": str(REPO / "src"),
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=cpu",
        "RUNPOD_AI_API_KEY": endpoint["workerToken"],
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_ENDPOINT_ID": endpoint["id"],
        "RUNPOD_PING_INTERVAL": "10000",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_DEBUG_LEVEL": "ERROR",
    }


def _command(runtime: str, sc: Scenario, gw: Gateway, ep: dict, worker_id: str) -> list[str]:
    if runtime == "bare":
        chunks = "3" if sc.kind == "stream" else "0"
        base = f"{gw.url}/v2/{ep['id']}"
        token = ep["workerToken"]
        load = str(HERE / "_load.py")
        hold = str(WORKER_HOLD_S)
        return [sys.executable, load, "worker", base, token, worker_id, hold, "900", "-", chunks]
    if runtime == "podium":
        return [
            sys.executable,
            "-m",
            "podium.worker",
            f"{HANDLERS}:{sc.kind}",
            "--concurrency",
            str(sc.concurrency),
        ]
    return [str(RUNPOD_PY), str(HANDLERS), sc.kind, str(sc.concurrency)]


@contextlib.contextmanager
def running_workers(
    runtime: str, sc: Scenario, gw: Gateway, ep: dict, tmp: Path, py_spy: Path | None
) -> Iterator[list[subprocess.Popen]]:
    # The bare loop has no concurrency in a process: its "1x4" is 4 processes (the ceiling).
    n = sc.processes * (sc.concurrency if runtime == "bare" else 1)
    procs: list[subprocess.Popen] = []
    spies: list[subprocess.Popen] = []
    try:
        for i in range(n):
            worker_id = f"{runtime}-{ep['id'][:6]}-{i}"
            args = _command(runtime, sc, gw, ep, worker_id)
            env = _worker_env(gw, ep, worker_id, tmp / "home")
            procs.append(spawn(args, tmp / f"{worker_id}.log", env))

        def polling() -> bool:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a {runtime} worker exited with {p.returncode}")
            return gw.health(ep["id"])["workers"]["ready"] >= n

        wait_until(f"{n} {runtime} worker(s) polling", polling, timeout=60)
        if py_spy is not None and runtime == "podium":
            for i, p in enumerate(procs):
                out = py_spy / f"{gw.data_dir.name}-{sc.name.replace(' ', '_')}-{i}.txt"
                args = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", str(out)]
                spies.append(spawn([*args, "-p", str(p.pid)], tmp / f"py-spy-{i}.log"))
        time.sleep(0.3)  # every worker is inside its job-take now
        yield procs
    finally:
        for spy in spies:  # SIGINT: py-spy writes its profile and exits
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(30)
        for p in procs:
            stop(p, grace=WORKER_HOLD_S + 5)


def _cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User + system CPU of the worker processes and their children (the runpod SDK
    pings from a child process) so far. Unlike wall time, barely moved by other load."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(p.pid)
            for q in [proc, *proc.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system
    return total


def runsync_latency(gw: Gateway, ep: str, key: str, n: int) -> Latency:
    conn = Conn(gw.port, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        for _ in range(RUNSYNC_WARMUP):
            conn.call("POST", f"/v2/{ep}/runsync?wait=10000", JOB_BODY)
        samples: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            status, body = conn.call("POST", f"/v2/{ep}/runsync?wait=10000", JOB_BODY)
            samples.append(time.perf_counter() - t0)
            if _expect(status, body, "/runsync")["status"] != "COMPLETED":
                raise RuntimeError(f"/runsync did not complete: {body}")
        return Latency.of(samples)
    finally:
        conn.close()


def measure(
    runtime: str,
    sc: Scenario,
    gw: Gateway,
    key: str,
    plan: Plan,
    tmp: Path,
    cell: Cell,
    py_spy: Path | None,
) -> None:
    ep = gw.create_endpoint(f"{runtime}-{sc.name.replace(' ', '-')}")
    slow = runtime == "runpod"
    try:
        with running_workers(runtime, sc, gw, ep, tmp, py_spy) as procs:
            cpu0 = _cpu_seconds(procs)
            if sc.latency:
                n = plan.runpod_latency_jobs if slow else plan.latency_jobs
                cell.latencies.append(runsync_latency(gw, ep["id"], key, n))
                n += RUNSYNC_WARMUP
            else:
                n = plan.runpod_drain_jobs if slow else plan.drain_jobs
                url = f"{gw.url}/v2/{ep['id']}/run"
                rate, _, _, _ = drain(gw, ep["id"], key, n, False, [(url, 32, n)])
                cell.rates.append(rate)
            cell.cpu_ms.append((_cpu_seconds(procs) - cpu0) / n * 1000)
    except Exception as exc:  # one failing cell must not hide the others
        cell.error = f"{type(exc).__name__}: {exc}"[:200]
        console.print(f"[red]{runtime} / {sc.name}: {cell.error}[/red]")


def bench_store(
    label: str,
    store_url: str | None,
    plan: Plan,
    scenarios: list[Scenario],
    runtimes: list[str],
    tmp: Path,
    py_spy: Path | None,
) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    gw = Gateway(tmp / f"gw-{label.lower()}", store_url).start()
    try:
        key = gw.admin_key
        for sc in scenarios:
            for r in range(plan.repeats):
                for runtime in runtimes:
                    if runtime == "runpod" and r > 0:
                        continue
                    cell = cells.setdefault((sc.name, runtime), Cell())
                    if cell.error is None:
                        console.print(f"[dim]{label}: {sc.name} / {runtime} ({r + 1})[/dim]")
                        measure(runtime, sc, gw, key, plan, tmp, cell, py_spy)
    finally:
        gw.stop()
    return cells


# --- output --------------------------------------------------------------------------


def _fmt_latency(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.error:
        return "failed"
    if cell.p50() is None:
        return "—"
    return f"{cell.p50():.2f} / {cell.p99():.2f} ms{_fmt_cpu(cell)}"


def _fmt_rate(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.error:
        return "failed"
    rate = cell.rate()
    return "—" if rate is None else f"{rate:,.0f} jobs/s{_fmt_cpu(cell)}"


def _fmt_cpu(cell: Cell) -> str:
    cpu = cell.cpu()
    return "" if cpu is None else f" ({cpu:.2f})"


def _ratio(sc: Scenario, cells: dict, a: str, b: str) -> str:
    x, y = cells.get((sc.name, a)), cells.get((sc.name, b))
    if x is None or y is None or x.error or y.error:
        return "—"
    if sc.latency:
        ratio = f"{x.p50() / y.p50():.2f}x" if x.p50() and y.p50() else "—"
    else:
        ratio = f"{x.rate() / y.rate():.2f}x" if x.rate() and y.rate() else "—"
    cpu = f" (cpu {x.cpu() / y.cpu():.2f}x)" if x.cpu() and y.cpu() else ""
    return ratio + cpu


def render(results: dict[str, dict], runtimes: list[str], env: list[tuple[str, str]]) -> None:
    head = Table(title="Environment", show_header=False)
    for k, v in env:
        head.add_row(k, v)
    console.print(head)
    for label, cells in results.items():
        table = Table(title=f"Worker runtimes on {label}: no-op jobs (runsync p50 / p99; drain)")
        table.add_column("scenario")
        for runtime in runtimes:
            table.add_column(runtime, justify="right")
        table.add_column("podium / bare", justify="right")
        for sc in SCENARIOS:
            fmt = _fmt_latency if sc.latency else _fmt_rate
            row = [fmt(cells.get((sc.name, r))) for r in runtimes]
            table.add_row(sc.name, *row, _ratio(sc, cells, "podium", "bare"))
        console.print(table)
    console.print(
        "[dim]In brackets: the workers' CPU per job in ms (user + system, all worker "
        "processes). Targets: runsync p50 podium/bare <= 1.25x; drain podium/bare >= 0.8x. "
        "bare 1x4 = 4 bare processes (it has no in-process concurrency).[/dim]"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", choices=("sqlite", "redis"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-runpod", action="store_true", help="skip the runpod SDK worker")
    parser.add_argument("--runtime", action="append", choices=RUNTIMES, help="only these")
    parser.add_argument(
        "--scenario", action="append", choices=[sc.name for sc in SCENARIOS], help="only these"
    )
    parser.add_argument("--py-spy", type=Path, help="record Podium's workers with py-spy here")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    scenarios = [sc for sc in SCENARIOS if not args.scenario or sc.name in args.scenario]
    stores = args.store or ["sqlite", "redis"]
    runtimes = list(args.runtime or RUNTIMES)
    if (args.no_runpod or not RUNPOD_PY.exists()) and "runpod" in runtimes:
        runtimes.remove("runpod")
    if args.py_spy is not None:
        if shutil.which("py-spy") is None:
            parser.error("py-spy is not on PATH (pip install py-spy)")
        args.py_spy.mkdir(parents=True, exist_ok=True)
    prefix = f"wrbench-{uuid.uuid4().hex[:8]}:"
    redis_url = f"{REDIS_URL}?prefix={prefix}"
    env = environment([REDIS_URL] if "redis" in stores else [], "Python fallback (32 conns)")
    env.insert(3, ("httpx", _version("httpx")))
    if "runpod" in runtimes:
        rp = subprocess.run(
            [str(RUNPOD_PY), "-c", "import runpod; print(runpod.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        env.insert(4, ("runpod SDK", rp.stdout.strip() or "?"))
    env.append(("Load average", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    cpu = CpuWatch()
    tmp = Path(tempfile.mkdtemp(prefix="podium-wrbench-"))
    results: dict[str, dict] = {}
    started = time.monotonic()
    try:
        for store in stores:
            label = "SQLite" if store == "sqlite" else "Redis"
            url = None if store == "sqlite" else redis_url
            results[label] = bench_store(label, url, plan, scenarios, runtimes, tmp, args.py_spy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if "redis" in stores:
            delete_prefix(redis_url)
    env.append(("CPU during the run", cpu.summary()))
    render(results, runtimes, env)
    console.print(
        f"[dim]{'quick' if args.quick else 'full'} run, {time.monotonic() - started:.0f} s[/dim]"
    )
    if args.json:
        data = {
            label: {
                f"{sc}|{rt}": {
                    "p50_ms": c.p50(),
                    "p99_ms": c.p99(),
                    "rate": c.rate(),
                    "error": c.error,
                }
                for (sc, rt), c in cells.items()
            }
            for label, cells in results.items()
        }
        args.json.write_text(json.dumps({"env": env, "results": data}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
