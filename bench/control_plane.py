"""Control-plane benchmark of a Podium gateway, on loopback, in one run.

    .venv/bin/python bench/control_plane.py                      # full run, SQLite + Redis
    .venv/bin/python bench/control_plane.py --quick              # ~1-minute smoke run
    .venv/bin/python bench/control_plane.py --no-multi-gateway   # skip section 8
    .venv/bin/python bench/control_plane.py --multi-gateway-only # only section 8
    .venv/bin/python bench/control_plane.py --store sqlite --store redis://127.0.0.1:6379/14

What it measures (per store, side by side):
 1. the ceiling: a bare FastAPI POST route on the same uvicorn stack, its wrk runs taken
    in turn with the gateway's `/run` runs (same background load on a shared machine);
 2. `/run` and 3. `/status` requests/s, p50/p99 at concurrency 32 against a real
    `podium serve` (fresh data dir, auth on with DATA_DIR/admin.key, --no-rate-limits);
 4. no-op job latency with one idle raw-HTTP worker already long-polling: `/runsync`,
    and `/run` + `/status?wait=` until COMPLETED (sequential);
 5. completed no-op jobs/s with 4 worker processes (first submit -> last COMPLETED);
 6. job-take latency with 100,000 jobs queued (inserted directly through
    `podium.store.open_store(url).submit(...)` into the running gateway's store) vs.
    an empty queue (one job present, `?hold=0`: the take, not the hold, is timed);
 7. the gateway's RSS at the end;
 8. (`--multi-gateway` section, on by default, needs Redis) completed no-op jobs/s with
    8 worker processes and 1 vs 2 gateways on one Redis (`?prefix=` of its own), and how
    the jobs spread over the two gateways: submitted round-robin (two load generators of
    16 connections, one per gateway), 8 workers split 4/4 (each long-polls one gateway
    and records how many jobs it got through it).

Load generator: `wrk` (1 thread) when installed, else a raw asyncio HTTP/1.1 client
(bench/_load.py says why not httpx). Sequential latencies use a keep-alive
`http.client` connection (the lightest client in the stdlib). Every loop is bounded in
count and time; every target is 127.0.0.1. The header reports how much CPU other
processes took during the run: on a shared machine, read the figures with it.

A Redis store URL's database is flushed before and after its run: give it a dedicated
database number (the default, 14, is the benchmark's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.client
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

import _load
from podium.clock import Clock
from podium.settings import ADMIN_KEY_FILE
from podium.store import JobStore, open_store

HERE = Path(__file__).resolve().parent
LOAD_SCRIPT = HERE / "_load.py"
HOST = "127.0.0.1"
DEFAULT_STORES = ["sqlite", "redis://127.0.0.1:6379/14"]
JOB_BODY = '{"input": {"noop": true}}'
WORKER_HOLD_S = 2.0  # the workers' long-poll hold; stale holds of killed workers end soon
HEALTH_POLL_S = 0.05  # /health poll period while 4 workers drain the queue

console = Console() if sys.stdout.isatty() else Console(width=150)
log = Console(stderr=True)


@dataclass(frozen=True, slots=True)
class Plan:
    wrk_s: float  # one measured wrk run
    repeats: int  # measured runs per route; the one with the median requests/s is shown
    warm_s: float  # warm-up before them
    latency_jobs: int  # sequential /runsync and /run+/status jobs (each)
    throughput_jobs: int  # jobs for the 4-worker run
    queued: int  # jobs queued for the take-latency test
    takes: int  # timed takes (each case)
    mg_jobs: int  # jobs per multi-gateway run
    mg_rounds: int  # rounds of (1 gateway, 2 gateways), taken in turn


FULL = Plan(
    wrk_s=5,
    repeats=3,
    warm_s=1,
    latency_jobs=300,
    throughput_jobs=6000,
    queued=100_000,
    takes=300,
    mg_jobs=4000,
    mg_rounds=2,
)
QUICK = Plan(
    wrk_s=2,
    repeats=1,
    warm_s=1,
    latency_jobs=60,
    throughput_jobs=600,
    queued=10_000,
    takes=60,
    mg_jobs=600,
    mg_rounds=1,
)
MG_WORKERS = 8  # no-op worker processes in the multi-gateway section
MG_CONNECTIONS = 16  # per load generator; two of them (one per submit target)


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A child in its own process group (so stop() reaches anything it forks)."""
    with log_path.open("ab") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def stop(proc: subprocess.Popen | None, grace: float = 8.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "RUNPOD_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Conn:
    """A keep-alive HTTP/1.1 connection for sequential, timed calls."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._conn = http.client.HTTPConnection(HOST, port, timeout=30)
        self._headers = headers

    def call(self, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
        self._conn.request(method, path, body=body, headers=self._headers)
        resp = self._conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)

    def reconnect(self) -> None:
        """A fresh connection now (a server closes idle keep-alive ones: uvicorn after 5 s)."""
        self._conn.close()
        self._conn.connect()

    def close(self) -> None:
        self._conn.close()


@dataclass
class Gateway:
    """A real `podium serve` process on a fresh data dir, auth on, no rate limits."""

    data_dir: Path
    store_url: str | None  # None: the default SQLite file in data_dir
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)
    # A second gateway on a shared store finds the admin key already made: read the
    # first gateway's DATA_DIR/admin.key instead of its own (it has none).
    admin_key_file: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def effective_store(self) -> str:
        return self.store_url or str(self.data_dir / "podium.db")

    def start(self) -> Gateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "podium.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--no-rate-limits",
            "--take-hold-s",
            str(WORKER_HOLD_S),
        ]
        if self.store_url:
            args += ["--store", self.store_url]
        args += self.extra_args
        self.proc = spawn(args, self.data_dir / "gateway.log", clean_env())
        wait_until(f"the gateway on {self.url}", self._up)
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("the gateway exited:\n" + self.log_tail())
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self) -> str:
        path = self.data_dir / "gateway.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @property
    def admin_key(self) -> str:
        return (self.admin_key_file or self.data_dir / ADMIN_KEY_FILE).read_text().strip()

    def counter(self, name: str, endpoint_id: str) -> int:
        """A Prometheus counter of this gateway process, from its /metrics."""
        with self.client() as c:
            r = c.get("/metrics")
            r.raise_for_status()
        wanted = f'{name}_total{{endpoint="{endpoint_id}"}}'
        for line in r.text.splitlines():
            if line.startswith(wanted):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the gateway process so far."""
        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30
        )

    def create_endpoint(self, name: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/v1/endpoints", json={"name": name})
            r.raise_for_status()
            return r.json()

    def health(self, endpoint_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/v2/{endpoint_id}/health")
            r.raise_for_status()
            return r.json()

    def memory(self) -> tuple[float, float]:
        """(RSS, peak RSS) in MiB, from /proc/PID/status."""
        assert self.proc is not None
        rss = psutil.Process(self.proc.pid).memory_info().rss / 2**20
        peak = rss
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        return rss, peak

    def stop(self) -> None:
        stop(self.proc)


@contextlib.contextmanager
def workers(
    gw: Gateway,
    endpoint: dict[str, Any],
    n: int,
    tmp: Path,
    spread: list[Gateway] | None = None,
    summaries: list[Path] | None = None,
) -> Iterator[None]:
    """n raw-HTTP worker processes long-polling this endpoint; waits until all poll.
    With `spread`, worker i long-polls spread[i % len(spread)] instead of gw (which must
    share its store). With `summaries`, each worker writes how many jobs it got to a
    file, appended to that list (readable once the context has exited)."""
    procs = []
    try:
        for i in range(n):
            target = spread[i % len(spread)] if spread else gw
            worker_id = f"bench-{endpoint['id'][:6]}-{i}"
            args = [
                sys.executable,
                str(LOAD_SCRIPT),
                "worker",
                f"{target.url}/v2/{endpoint['id']}",
                endpoint["workerToken"],
                worker_id,
                str(WORKER_HOLD_S),
                "900",
            ]
            if summaries is not None:
                summaries.append(tmp / f"{worker_id}.json")
                args.append(str(summaries[-1]))
            procs.append(spawn(args, tmp / f"worker-{endpoint['id']}-{i}.log", clean_env()))

        def polling() -> bool:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited with {p.returncode}")
            w = gw.health(endpoint["id"])["workers"]
            return w["idle"] + w["running"] >= n

        wait_until(f"{n} worker(s) long-polling", polling)
        time.sleep(0.2)  # every worker is inside its job-take now
        yield
    finally:
        for p in procs:  # SIGTERM to all first: their last long-polls end together
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            stop(p, grace=WORKER_HOLD_S + 3)


class CpuWatch:
    """CPU time spent on the machine while it runs: by this benchmark (this process and
    its waited-for children: gateways, workers, wrk), by redis-server, and by everything
    else. On a shared machine the last figure says how much the numbers were disturbed."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = self._busy()
        self._own0 = self._own()
        self._redis0 = self._redis()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - guest

    @staticmethod
    def _own() -> float:
        """This process, its reaped children and its live children (with theirs)."""
        me = psutil.Process()
        total = 0.0
        for proc in (me, *me.children()):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    @staticmethod
    def _redis() -> dict[int, float]:
        seen = {}
        for p in psutil.process_iter(["name", "cpu_times"]):
            if p.info["name"] == "redis-server" and p.info["cpu_times"] is not None:
                seen[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
        return seen

    def summary(self) -> str:
        """'benchmark X%, redis-server Y%, other processes Z%' of the machine's cores."""
        capacity = (time.monotonic() - self._t0) * (os.cpu_count() or 1)
        own = self._own() - self._own0
        now = self._redis()
        redis = sum(v - self._redis0.get(pid, 0.0) for pid, v in now.items())
        other = max(0.0, self._busy() - self._busy0 - own - redis)
        parts = [f"benchmark {own / capacity:.0%}"]
        if redis > 0.01 * capacity:
            parts.append(f"redis-server {redis / capacity:.0%}")
        parts.append(f"other processes {other / capacity:.0%}")
        return ", ".join(parts) + f" of {os.cpu_count()} cores"


# --- measurements --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p99_ms: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        return cls(
            _load.percentile(seconds, 50) * 1000, _load.percentile(seconds, 99) * 1000, len(seconds)
        )


@dataclass
class StoreResult:
    label: str
    skipped: str | None = None
    bare: _load.LoadResult | None = None  # the ceiling, run in turn with `run`
    run: _load.LoadResult | None = None
    run_cpu_ms: float | None = None  # gateway CPU per /run request
    status: _load.LoadResult | None = None
    runsync: Latency | None = None
    roundtrip: Latency | None = None
    jobs_per_s: float | None = None
    jobs_done: int = 0
    take_empty: Latency | None = None
    take_full: Latency | None = None
    queued: int = 0
    enqueue_per_s: float | None = None
    rss_mb: float | None = None
    peak_mb: float | None = None
    cpu: str = ""
    notes: list[str] = field(default_factory=list)


def measure_interleaved(
    targets: list[tuple[str, dict[str, Any]]], plan: Plan, use_wrk: bool
) -> list[_load.LoadResult]:
    """Warm every target up, then run them in turn `plan.repeats` times (A B A B ...), so
    that each sees the same background load; per target, the run with the median
    requests/s is kept (with the errors of all its runs)."""
    for url, kw in targets:
        _load.run_load(url, use_wrk=use_wrk, seconds=plan.warm_s, **kw)
    runs: list[list[_load.LoadResult]] = [[] for _ in targets]
    for _ in range(plan.repeats):
        for i, (url, kw) in enumerate(targets):
            runs[i].append(_load.run_load(url, use_wrk=use_wrk, seconds=plan.wrk_s, **kw))
    kept = []
    for target_runs in runs:
        median = sorted(target_runs, key=lambda r: r.rps)[len(target_runs) // 2]
        median.errors = sum(r.errors for r in target_runs)
        kept.append(median)
    return kept


@contextlib.contextmanager
def bare_server(tmp: Path) -> Iterator[str]:
    """The ceiling app in its own uvicorn process; yields its POST URL. It stays up (idle)
    for the whole run so that its runs can be interleaved with the gateway's."""
    port = free_port()
    proc = spawn(
        [sys.executable, str(LOAD_SCRIPT), "bare", str(port)], tmp / "bare.log", clean_env()
    )
    url = f"http://{HOST}:{port}/v2/bench/run"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError("the bare app exited:\n" + (tmp / "bare.log").read_text())
        try:
            return httpx.post(url, content=JOB_BODY, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until("the bare ASGI app", up)
        yield url
    finally:
        stop(proc)


def _expect(status: int, body: Any, what: str, code: int = 200) -> Any:
    if status != code:
        raise RuntimeError(f"{what}: HTTP {status} {body}")
    return body


def measure_latency(gw: Gateway, ep: str, key: str, n: int) -> tuple[Latency, Latency]:
    """Sequential no-op jobs with an idle worker long-polling: /runsync, then /run +
    /status?wait= (repeated until COMPLETED)."""
    conn = Conn(gw.port, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        for _ in range(5):  # warm-up
            conn.call("POST", f"/v2/{ep}/runsync?wait=10000", JOB_BODY)
        sync: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            status, body = conn.call("POST", f"/v2/{ep}/runsync?wait=10000", JOB_BODY)
            sync.append(time.perf_counter() - t0)
            if _expect(status, body, "/runsync")["status"] != "COMPLETED":
                raise RuntimeError(f"/runsync did not complete: {body}")
        rt: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            job = _expect(*conn.call("POST", f"/v2/{ep}/run", JOB_BODY), "/run")
            for _ in range(20):
                body = _expect(
                    *conn.call("GET", f"/v2/{ep}/status/{job['id']}?wait=10000"), "/status"
                )
                if body["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
                    break
            rt.append(time.perf_counter() - t0)
            if body["status"] != "COMPLETED":
                raise RuntimeError(f"/run + /status did not complete: {body}")
        return Latency.of(sync), Latency.of(rt)
    finally:
        conn.close()


def measure_throughput(gw: Gateway, ep: str, key: str, n: int, use_wrk: bool) -> tuple[float, int]:
    """4 workers already polling; submit n jobs at concurrency 32 while they drain the
    queue. Returns (completed jobs/s from the first submit, jobs completed)."""
    rate, done, _, _ = drain(gw, ep, key, n, use_wrk, [(f"{gw.url}/v2/{ep}/run", 32, n)])
    return rate, done


def drain(
    gw: Gateway, ep: str, key: str, n: int, use_wrk: bool, targets: list[tuple[str, int, int]]
) -> tuple[float, int, list[_load.LoadResult], float]:
    """Workers already polling; one load generator per (url, connections, jobs) target,
    all started together, submit n jobs in all while the workers drain the queue; stop at
    the first /health (asked of gw; a shared store answers for all gateways) that shows n
    jobs finished and none queued or running (polled every 50 ms: each poll costs the
    gateway a COUNT over the endpoint's jobs). Returns (completed jobs/s from the first
    submit, jobs completed, each target's load result, seconds)."""
    conn = Conn(gw.port, {"Authorization": f"Bearer {key}"})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    loads = [
        _load.Background(
            url,
            use_wrk=use_wrk,
            method="POST",
            body=JOB_BODY,
            seconds=120,
            stop_after=count,
            connections=connections,
            headers=headers,
        )
        for url, connections, count in targets
    ]
    results: list[_load.LoadResult] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            jobs = _expect(*conn.call("GET", f"/v2/{ep}/health"), "/health")["jobs"]
            ended = jobs["completed"] + jobs["failed"] + jobs["timedOut"] + jobs["cancelled"]
            idle = jobs["inQueue"] == 0 and jobs["inProgress"] == 0
            if idle and (ended >= n or not any(load.running() for load in loads)):
                elapsed = time.perf_counter() - t0
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the jobs did not finish in time: {jobs}")
            time.sleep(HEALTH_POLL_S)
    finally:
        failures = []
        for load in loads:  # stop every one, even when one of them fails
            try:
                results.append(load.stop())
            except Exception as exc:
                failures.append(exc)
        conn.close()
    if failures:
        raise failures[0]
    errors = sum(r.errors for r in results)
    if errors or jobs["completed"] != ended:
        raise RuntimeError(f"errors while submitting ({errors}) or jobs not COMPLETED: {jobs}")
    return jobs["completed"] / elapsed, jobs["completed"], results, elapsed


def time_takes(conn: Conn, ep: str, n: int, before: Callable[[], None] | None = None) -> Latency:
    samples: list[float] = []
    path = f"/v2/{ep}/job-take/bench-taker?hold=0"
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        status, body = conn.call("GET", path)
        samples.append(time.perf_counter() - t0)
        _expect(status, body, "job-take")
    return Latency.of(samples)


async def _enqueue_direct(store_url: str, ep_id: str, n: int) -> None:
    """`n` jobs through the store's own submit(), as `/run` would create them."""
    from podium.clock import SystemClock
    from podium.jobs import DEFAULT_LIMITS, Job, parse_submission

    clock = SystemClock()
    store = open_store(store_url, clock)
    try:
        endpoint = await store.get_endpoint(ep_id)
        assert endpoint is not None
        body = json.loads(JOB_BODY)
        sub = parse_submission(
            body,
            json.dumps(body["input"]),
            DEFAULT_LIMITS,
            endpoint.spec.execution_timeout_ms,
        )
        retention = endpoint.spec.retention_run_ms or DEFAULT_LIMITS.retention_run_ms
        batch = 64  # concurrent submits (the Redis pool allows 100 connections)
        for start in range(0, n, batch):
            jobs = [
                Job.new(ep_id, sub, clock.now(), retention) for _ in range(min(batch, n - start))
            ]
            await asyncio.gather(*(store.submit(j, endpoint.spec.retry_limit) for j in jobs))
    finally:
        await store.close()


def measure_take(
    gw: Gateway,
    empty_ep: dict[str, Any],
    full_ep: dict[str, Any],
    key: str,
    plan: Plan,
    result: StoreResult,
) -> None:
    run_conn = Conn(gw.port, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        # Empty queue: one job present at a time (submitted untimed), then the timed take.
        conn = Conn(gw.port, {"Authorization": empty_ep["workerToken"]})

        def one_job() -> None:
            _expect(*run_conn.call("POST", f"/v2/{empty_ep['id']}/run", JOB_BODY), "/run")

        time_takes(conn, empty_ep["id"], 5, one_job)  # warm-up
        result.take_empty = time_takes(conn, empty_ep["id"], plan.takes, one_job)
        conn.close()
        # plan.queued jobs queued behind the head.
        t0 = time.perf_counter()
        asyncio.run(_enqueue_direct(gw.effective_store, full_ep["id"], plan.queued))
        result.enqueue_per_s = plan.queued / (time.perf_counter() - t0)
        queued = gw.health(full_ep["id"])["jobs"]["inQueue"]
        if queued != plan.queued:
            raise RuntimeError(f"expected {plan.queued} queued jobs, /health says {queued}")
        result.queued = queued
        conn = Conn(gw.port, {"Authorization": full_ep["workerToken"]})
        time_takes(conn, full_ep["id"], 5)  # warm-up
        result.take_full = time_takes(conn, full_ep["id"], plan.takes)
        conn.close()
    finally:
        run_conn.close()


def bench_store(
    label: str, store_url: str | None, plan: Plan, use_wrk: bool, tmp: Path, bare_url: str
) -> StoreResult:
    result = StoreResult(label)
    gw = Gateway(tmp / f"gw-{len(list(tmp.iterdir()))}", store_url)
    cpu = CpuWatch()
    try:
        gw.start()
        key = gw.admin_key
        eps = {
            name: gw.create_endpoint(f"bench-{name}")
            for name in ("run", "latency", "throughput", "take-empty", "take-full")
        }
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        ep_run = eps["run"]["id"]
        log.print(f"[{label}] bare route and /run in turn, then /status, at concurrency 32")
        post = {"method": "POST", "body": JOB_BODY}
        result.bare, result.run = measure_interleaved(
            [
                (bare_url, {**post, "headers": {"Content-Type": "application/json"}}),
                (f"{gw.url}/v2/{ep_run}/run", {**post, "headers": auth}),
            ],
            plan,
            use_wrk,
        )
        # Gateway CPU per /run: barely moved by other load, unlike req/s (one more run).
        cpu0 = gw.cpu_seconds()
        counted = _load.run_load(
            f"{gw.url}/v2/{ep_run}/run", use_wrk=use_wrk, seconds=plan.wrk_s, **post, headers=auth
        )
        result.run_cpu_ms = (gw.cpu_seconds() - cpu0) / max(1, counted.requests) * 1000
        with gw.client() as c:
            job_id = c.post(f"/v2/{ep_run}/run", content=JOB_BODY).json()["id"]
            (result.status,) = measure_interleaved(
                [(f"{gw.url}/v2/{ep_run}/status/{job_id}", {"headers": auth})], plan, use_wrk
            )
            purged = c.post(f"/v2/{ep_run}/purge-queue").json()["removed"]
        result.notes.append(f"/run phase queued {purged} jobs (purged afterwards)")
        log.print(f"[{label}] no-op latency with 1 idle worker ({plan.latency_jobs} jobs each)")
        with workers(gw, eps["latency"], 1, gw.data_dir):
            result.runsync, result.roundtrip = measure_latency(
                gw, eps["latency"]["id"], key, plan.latency_jobs
            )
        log.print(f"[{label}] {plan.throughput_jobs} no-op jobs through 4 workers")
        with workers(gw, eps["throughput"], 4, gw.data_dir):
            result.jobs_per_s, result.jobs_done = measure_throughput(
                gw, eps["throughput"]["id"], key, plan.throughput_jobs, use_wrk
            )
        log.print(f"[{label}] job-take latency: empty queue vs {plan.queued:,} queued")
        measure_take(gw, eps["take-empty"], eps["take-full"], key, plan, result)
        result.rss_mb, result.peak_mb = gw.memory()
    except Exception as exc:
        result.skipped = f"failed: {exc}"
        log.print(f"[red][{label}] failed[/red]: {exc}\n{gw.log_tail()}")
    finally:
        gw.stop()
        result.cpu = cpu.summary()
    return result


# --- two gateways on one Redis --------------------------------------------------------


@dataclass
class MultiRun:
    """One drain of plan.mg_jobs no-op jobs by MG_WORKERS workers."""

    gateways: int
    jobs_per_s: float
    jobs: int
    seconds: float
    submitted: list[int]  # per gateway (A, B): its podium_jobs_submitted counter (/metrics)
    taken: list[int]  # per gateway: jobs the workers polling it completed
    gateway_cpu: list[float]  # per gateway, CPU-seconds / wall-seconds (1.0 = one core)
    redis_cpu: float | None  # the same for redis-server
    machine_busy: float  # busy share of all cores during the drain (everything running)
    # server-wide calls per command during the drain (INFO commandstats: the commands run
    # inside Lua scripts count too; other clients of the server would count as well)
    redis_calls: dict[str, int] | None


@dataclass
class MultiResult:
    label: str
    skipped: str | None = None
    runs: list[MultiRun] = field(default_factory=list)
    cpu: str = ""


def _redis_client(url: str) -> Any:
    """A redis-py client for a store URL (without Podium's `prefix` parameter)."""
    import urllib.parse

    import redis

    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "prefix"]
    plain = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return redis.Redis.from_url(plain, socket_connect_timeout=2)


def _with_prefix(url: str, prefix: str) -> str:
    return url + ("&" if "?" in url else "?") + f"prefix={prefix}"


def _redis_calls(url: str) -> dict[str, int] | None:
    """Calls per command so far, server-wide (INFO commandstats)."""
    with contextlib.suppress(Exception):
        client = _redis_client(url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return None


def multi_run(
    active: list[Gateway], key: str, plan: Plan, use_wrk: bool, tmp: Path, tag: str
) -> MultiRun:
    """MG_WORKERS workers spread over the active gateways (4/4 for two); two load
    generators of MG_CONNECTIONS connections each, one per active gateway (both on the
    one gateway when there is one), submit plan.mg_jobs jobs in all."""
    a = active[0]
    store_url = a.store_url or ""
    ep = a.create_endpoint(f"bench-mg-{tag}")
    half = plan.mg_jobs // 2
    targets = [
        (f"{active[i % len(active)].url}/v2/{ep['id']}/run", MG_CONNECTIONS, count)
        for i, count in enumerate((half, plan.mg_jobs - half))
    ]
    summaries: list[Path] = []
    with workers(a, ep, MG_WORKERS, tmp, spread=active, summaries=summaries):
        cpu0 = [gw.cpu_seconds() for gw in active]
        redis0 = CpuWatch._redis()
        busy0 = CpuWatch._busy()
        calls0 = _redis_calls(store_url)
        rate, done, _, seconds = drain(a, ep["id"], key, plan.mg_jobs, use_wrk, targets)
        calls1 = _redis_calls(store_url)
        redis1 = CpuWatch._redis()
        busy1 = CpuWatch._busy()
        cpu1 = [gw.cpu_seconds() for gw in active]
    by_base = {f"{gw.url}/v2/{ep['id']}": i for i, gw in enumerate(active)}
    taken = [0, 0]
    for path in summaries:
        summary = json.loads(path.read_text())
        taken[by_base[summary["base"]]] += summary["jobs"]
    # wrk counts the answers it read before stopping, not the requests still in flight:
    # each gateway's own counter of accepted jobs is exact.
    submitted = [0, 0]
    for i, gw in enumerate(active):
        submitted[i] = gw.counter("podium_jobs_submitted", ep["id"])
    redis_s = sum(v - redis0.get(pid, 0.0) for pid, v in redis1.items())
    return MultiRun(
        gateways=len(active),
        jobs_per_s=rate,
        jobs=done,
        seconds=seconds,
        submitted=submitted,
        taken=taken,
        gateway_cpu=[(c1 - c0) / seconds for c0, c1 in zip(cpu0, cpu1, strict=True)],
        redis_cpu=redis_s / seconds if redis1 else None,
        machine_busy=(busy1 - busy0) / (seconds * (os.cpu_count() or 1)),
        redis_calls=None
        if calls0 is None or calls1 is None
        else {k: v - calls0.get(k, 0) for k, v in calls1.items() if v != calls0.get(k, 0)},
    )


def bench_multi_gateway(url: str, plan: Plan, use_wrk: bool, tmp: Path) -> MultiResult:
    """1 gateway vs 2 gateways on one Redis, MG_WORKERS no-op workers, in turn
    (1, 2, 1, 2, ...: the same background load for both)."""
    result = MultiResult(f"Redis ({url})")
    gateway_store, skip = prepare_store(url)
    if skip or gateway_store is None or not gateway_store.startswith(("redis", "unix")):
        result.skipped = skip or "needs a Redis store URL"
        log.print(f"[yellow]multi-gateway skipped[/yellow]: {result.skipped}")
        return result
    store = _with_prefix(gateway_store, f"benchmg{os.getpid()}")
    gw_a = Gateway(tmp / "mg-a", store)
    gw_b = Gateway(tmp / "mg-b", store, admin_key_file=gw_a.data_dir / ADMIN_KEY_FILE)
    cpu = CpuWatch()
    try:
        gw_a.start()
        key = gw_a.admin_key
        for r in range(plan.mg_rounds):
            for n in (1, 2):
                log.print(
                    f"[multi-gateway] round {r + 1}/{plan.mg_rounds}: {plan.mg_jobs} no-op "
                    f"jobs, {MG_WORKERS} workers, {n} gateway(s)"
                )
                active = [gw_a]
                if n == 2:
                    gw_b.start()
                    active.append(gw_b)
                try:
                    result.runs.append(multi_run(active, key, plan, use_wrk, tmp, f"{r}-{n}"))
                finally:
                    gw_b.stop()
    except Exception as exc:
        result.skipped = f"failed: {exc}"
        log.print(f"[red][multi-gateway] failed[/red]: {exc}\n{gw_a.log_tail()}{gw_b.log_tail()}")
    finally:
        gw_b.stop()
        gw_a.stop()
        result.cpu = cpu.summary()
        flush_redis(gateway_store)
    return result


# --- stores, versions, table ----------------------------------------------------------


def store_label(url: str) -> str:
    return "SQLite" if url in ("sqlite", "") or not url.startswith(("redis", "unix")) else "Redis"


def prepare_store(url: str) -> tuple[str | None, str | None]:
    """(gateway --store value, skip reason). Redis: the backend must import and the
    server answer; its database is flushed (it must be a dedicated one)."""
    if url == "sqlite":
        return None, None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return url, None
    try:
        import podium.store.redis  # noqa: F401
    except ImportError as exc:
        return None, f"Redis skipped: the backend podium.store.redis does not import ({exc})"
    try:
        client = _redis_client(url)
        client.ping()
        client.flushdb()
        client.close()
    except Exception as exc:
        return None, f"Redis skipped: {url} does not answer ({exc})"
    return url, None


def flush_redis(url: str) -> None:
    with contextlib.suppress(Exception):
        client = _redis_client(url)
        client.flushdb()
        client.close()


def delete_prefix(url: str) -> None:
    """Delete the keys of the Podium store at `url` (a Redis URL with `prefix=`) from a
    shared Redis database. Best effort, for clean-ups."""
    import urllib.parse

    prefix = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["prefix"]
    with contextlib.suppress(Exception):
        client = _redis_client(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        finally:
            client.close()


STORE_REDIS = DEFAULT_STORES[1]  # the in-process store benchmarks' Redis (a prefix each)


def scratch_url(kind: str, tmp: Path, name: str) -> str:
    """A store of `kind` ("sqlite" or "redis") for one benchmark: a file in `tmp`, or a
    fresh key prefix on STORE_REDIS (scratch_store deletes its keys)."""
    if kind == "sqlite":
        return str(tmp / f"{name}.db")
    return f"{STORE_REDIS}?prefix=b{name[:1]}{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def scratch_store(url: str, clock: Clock) -> AsyncIterator[JobStore]:
    """The store at `url`, closed at the end (a Redis prefix's keys deleted first)."""
    store = open_store(url, clock)
    try:
        yield store
    finally:
        if url.startswith("redis"):
            delete_prefix(url)
        await store.close()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(stores: list[str], generator: str) -> list[tuple[str, str]]:
    import fastapi
    import uvicorn

    import podium

    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rows = [
        (
            "Machine",
            f"{cpu}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, {platform.system()} "
            f"{platform.release()}",
        ),
        ("Python", platform.python_version()),
        ("Podium", podium.__version__),
        (
            "uvicorn",
            f"{uvicorn.__version__} (uvloop {_version('uvloop')}, "
            f"httptools {_version('httptools')})",
        ),
        ("FastAPI", f"{fastapi.__version__} (Starlette {_version('starlette')})"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    for url in stores:
        if url.startswith(("redis://", "rediss://", "unix://")):
            try:
                client = _redis_client(url)
                server = client.info("server")["redis_version"]
                client.close()
                rows.append(("Redis", f"server {server}, redis-py {_version('redis')}"))
            except Exception:
                rows.append(("Redis", f"unreachable, redis-py {_version('redis')}"))
            break
    rows.append(("Load generator", generator))
    return rows


def _ms(lat: Latency | _load.LoadResult | None) -> str:
    if lat is None:
        return "—"
    return f"{lat.p50_ms:.2f} / {lat.p99_ms:.2f}"


def _yes(ok: bool | None) -> str:
    return "—" if ok is None else ("[green]yes[/green]" if ok else "[red]no[/red]")


def _rows(r: StoreResult) -> list[tuple[str, str]]:
    """(value, met?) per table row for one store; the order of ROWS."""
    bare = r.bare
    run_ok = None if r.run is None or bare is None else r.run.rps >= 0.5 * bare.rps
    sync_ok = None if r.runsync is None else r.runsync.p50_ms <= 5.0
    take_ok = (
        None
        if r.take_full is None or r.take_empty is None
        else r.take_full.p50_ms <= 2 * r.take_empty.p50_ms
    )
    rss_ok = None if r.rss_mb is None else r.rss_mb <= 150
    pct = f" ({r.run.rps / bare.rps:.0%} of bare)" if r.run and bare else ""
    errs = sum(x.errors for x in (r.bare, r.run, r.status) if x is not None)
    return [
        (f"{bare.rps:,.0f}" if bare else "—", "—"),
        (_ms(bare), "—"),
        (f"{r.run.rps:,.0f}{pct}" if r.run else "—", _yes(run_ok)),
        (_ms(r.run), "—"),
        (f"{r.run_cpu_ms:.3f}" if r.run_cpu_ms else "—", "—"),
        (f"{r.status.rps:,.0f}" if r.status else "—", "—"),
        (_ms(r.status), "—"),
        (f"{r.runsync.p50_ms:.2f}" if r.runsync else "—", _yes(sync_ok)),
        (f"{r.runsync.p99_ms:.2f}" if r.runsync else "—", "—"),
        (_ms(r.roundtrip), "—"),
        (f"{r.jobs_per_s:,.0f} ({r.jobs_done:,} jobs)" if r.jobs_per_s else "—", "—"),
        (_ms(r.take_empty), "—"),
        (_ms(r.take_full), _yes(take_ok)),
        (f"{r.rss_mb:.0f} (peak {r.peak_mb:.0f})" if r.rss_mb else "—", _yes(rss_ok)),
        (str(errs) if r.run else "—", _yes(errs == 0 if r.run else None)),
    ]


ROWS = [
    ("Bare ASGI route, req/s (c=32)", "ceiling"),
    ("Bare ASGI route, p50 / p99 ms", ""),
    ("/run, req/s (c=32)", "≥ 50% of bare"),
    ("/run, p50 / p99 ms", ""),
    ("/run, gateway CPU ms per request", "Redis ≤ 1.25× SQLite"),
    ("/status, req/s (c=32)", ""),
    ("/status, p50 / p99 ms", ""),
    ("No-op /runsync, p50 ms (1 idle worker)", "≤ 5 ms"),
    ("No-op /runsync, p99 ms", ""),
    ("No-op /run + /status?wait=, p50 / p99 ms", ""),
    ("No-op jobs/s, 4 workers (submit c=32)", ""),
    ("job-take, empty queue, p50 / p99 ms", ""),
    ("job-take, {queued} queued, p50 / p99 ms", "p50 ≤ 2× empty"),
    ("Gateway RSS after the run, MiB", "≤ 150 MB"),
    ("Non-2xx / socket errors under load", "0"),
]


def render(results: list[StoreResult], plan: Plan, env: list[tuple[str, str]]) -> None:
    header = Table(show_header=False, box=None, pad_edge=False)
    for name, value in env:
        header.add_row(f"[bold]{name}[/bold]", value)
    console.print(header)
    shown = [r for r in results if r.skipped is None]
    for r in results:
        if r.skipped:
            console.print(f"[yellow]{r.label}[/yellow]: {r.skipped}")
    if not shown:
        return
    table = Table(title="Podium control plane, loopback (bare route measured per column)")
    table.add_column("Measurement")
    table.add_column("Target")
    for r in shown:
        table.add_column(r.label, justify="right")
        table.add_column("met?", justify="center")
    columns = [_rows(r) for r in shown]
    for i, (name, target) in enumerate(ROWS):
        cells: list[str] = []
        for col in columns:
            cells += list(col[i])
        table.add_row(name.format(queued=f"{plan.queued:,}"), target, *cells)
    console.print(table)
    by_label = {r.label: r for r in shown}
    sq, rd = by_label.get("SQLite"), by_label.get("Redis")
    if sq and rd and sq.run and rd.run and sq.bare and rd.bare:
        ratio = (rd.run.rps / rd.bare.rps) / (sq.run.rps / sq.bare.rps)
        cpu = (
            f", by gateway CPU per request {sq.run_cpu_ms / rd.run_cpu_ms:.2f}x"
            if (sq.run_cpu_ms and rd.run_cpu_ms)
            else ""
        )
        console.print(
            f"/run on Redis vs SQLite, each as a share of its own bare runs: {ratio:.2f}x"
            f"{cpu} (target >= 0.8x)"
        )
    for r in shown:
        if r.cpu:
            console.print(f"[dim]{r.label}: CPU during its run: {r.cpu}[/dim]")
        for note in r.notes:
            console.print(f"[dim]{r.label}: {note}[/dim]")
        if r.enqueue_per_s:
            console.print(
                f"[dim]{r.label}: {r.queued:,} jobs queued by direct store.submit() "
                f"at {r.enqueue_per_s:,.0f} jobs/s[/dim]"
            )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def render_multi(multi: MultiResult, plan: Plan) -> None:
    if multi.skipped:
        console.print(f"[yellow]Two gateways[/yellow]: {multi.skipped}")
        return
    table = Table(
        title=f"Two gateways on one Redis: {MG_WORKERS} no-op workers, "
        f"{plan.mg_jobs:,} jobs per run, {plan.mg_rounds} run(s) each, taken in turn"
    )
    table.add_column("Measurement")
    columns = {1: "1 gateway (A), 8 workers", 2: "2 gateways (A + B), 4 + 4 workers"}
    for title in columns.values():
        table.add_column(title, justify="right")

    def runs(n: int) -> list[MultiRun]:
        return [r for r in multi.runs if r.gateways == n]

    def split(values: list[int], n: int) -> str:
        total = sum(values) or 1
        if n == 1:
            return f"{values[0]:,} / —"
        return f"{values[0]:,} / {values[1]:,} ({values[0] / total:.0%} / {values[1] / total:.0%})"

    def cells(fn: Callable[[list[MultiRun], int], str]) -> list[str]:
        return [fn(runs(n), n) if runs(n) else "—" for n in columns]

    def rate(rs: list[MultiRun], n: int) -> str:
        mean = _mean([r.jobs_per_s for r in rs])
        text = f"{mean:,.0f}"
        if len(rs) > 1:
            text += " (" + ", ".join(f"{r.jobs_per_s:,.0f}" for r in rs) + ")"
        if n == 2 and runs(1):
            text += f", {mean / _mean([r.jobs_per_s for r in runs(1)]):.2f}× of 1 gateway"
        return text

    def per_gw(rs: list[MultiRun], n: int) -> str:
        shares = [_mean([r.gateway_cpu[i] for r in rs]) for i in range(n)]
        return " / ".join(f"{x:.0%}" for x in shares) + (" / —" if n == 1 else "")

    def redis_cmds(rs: list[MultiRun], n: int) -> str:
        known = [r for r in rs if r.redis_calls is not None]
        if not known:
            return "—"
        jobs = sum(r.jobs for r in known)
        total = sum(sum((r.redis_calls or {}).values()) for r in known)
        scripts = sum(
            (r.redis_calls or {}).get("evalsha", 0) + (r.redis_calls or {}).get("eval", 0)
            for r in known
        )
        return f"{total / jobs:.1f} ({scripts / jobs:.1f} script calls)"

    def redis_cpu(rs: list[MultiRun], n: int) -> str:
        known = [r.redis_cpu for r in rs if r.redis_cpu is not None]
        return f"{_mean(known):.0%}" if known else "—"

    table.add_row(
        "Completed no-op jobs/s (first submit → last COMPLETED)",
        *cells(rate),
    )
    table.add_row("Jobs completed (all runs)", *cells(lambda rs, n: f"{sum(r.jobs for r in rs):,}"))
    table.add_row(
        "Jobs submitted on A / B",
        *cells(lambda rs, n: split([sum(r.submitted[i] for r in rs) for i in (0, 1)], n)),
    )
    table.add_row(
        "Jobs taken through A / B (worker counts)",
        *cells(lambda rs, n: split([sum(r.taken[i] for r in rs) for i in (0, 1)], n)),
    )
    table.add_row("Gateway CPU A / B, share of one core (during the drain)", *cells(per_gw))
    table.add_row("redis-server CPU, share of one core", *cells(redis_cpu))
    table.add_row(
        f"Machine CPU busy ({os.cpu_count()} cores), all processes",
        *cells(lambda rs, n: f"{_mean([r.machine_busy for r in rs]):.0%}"),
    )
    table.add_row("Redis commands per job, incl. inside scripts", *cells(redis_cmds))
    console.print(table)
    console.print(
        f"[dim]Two gateways: submit = 2 load generators × {MG_CONNECTIONS} connections "
        "(both on A with 1 gateway, one per gateway with 2); workers split 4/4, each "
        "long-polls one gateway[/dim]"
    )
    console.print(f"[dim]Two gateways: CPU during the section: {multi.cpu}[/dim]")


def to_json(results: list[StoreResult], env: list[tuple[str, str]], plan: Plan) -> dict[str, Any]:
    def conv(value: Any) -> Any:
        if isinstance(value, _load.LoadResult):
            return {
                "rps": value.rps,
                "p50_ms": value.p50_ms,
                "p99_ms": value.p99_ms,
                "requests": value.requests,
                "errors": value.errors,
            }
        if isinstance(value, Latency):
            return {"p50_ms": value.p50_ms, "p99_ms": value.p99_ms, "n": value.n}
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    return {
        "environment": dict(env),
        "plan": dataclasses.asdict(plan),
        "stores": [{k: conv(getattr(r, k)) for k in r.__dataclass_fields__} for r in results],
    }


def multi_json(multi: MultiResult | None) -> dict[str, Any] | None:
    return None if multi is None else dataclasses.asdict(multi)


def run_store(url: str, plan: Plan, use_wrk: bool, tmp: Path, bare_url: str) -> StoreResult:
    gateway_store, skip = prepare_store(url)
    if skip:
        log.print(f"[yellow]{skip}[/yellow]")
        return StoreResult(store_label(url), skipped=skip)
    try:
        return bench_store(store_label(url), gateway_store, plan, use_wrk, tmp, bare_url)
    finally:
        if gateway_store and gateway_store.startswith(("redis", "rediss", "unix")):
            flush_redis(gateway_store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store",
        action="append",
        metavar="URL",
        help="sqlite (default file in a fresh data dir) or redis://HOST:PORT/DB;"
        " repeat for side-by-side columns (default: sqlite and "
        "redis://127.0.0.1:6379/14)",
    )
    parser.add_argument("--quick", action="store_true", help="~1-minute smoke run")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    section = parser.add_mutually_exclusive_group()
    section.add_argument(
        "--no-multi-gateway",
        action="store_true",
        help="skip the 1-vs-2-gateways section (it runs by default, on Redis)",
    )
    section.add_argument(
        "--multi-gateway-only", action="store_true", help="run only the 1-vs-2-gateways section"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    stores = args.store or DEFAULT_STORES
    redis_stores = [u for u in stores if u.startswith(("redis://", "rediss://", "unix://"))]
    multi_store = redis_stores[0] if redis_stores else DEFAULT_STORES[1]
    for url in stores:
        if "://" in url and not url.startswith(("sqlite:", "redis://", "rediss://", "unix://")):
            parser.error(f"unsupported store URL {url}")
        if url.startswith(("redis://", "rediss://")) and (httpx.URL(url).host or HOST) not in (
            HOST,
            "localhost",
        ):
            parser.error("loopback only: a Redis URL must point at 127.0.0.1")
    wrk = _load.wrk_version()
    if args.generator == "wrk" and wrk is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")
    use_wrk = wrk is not None and args.generator != "python"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    generator = (
        f"{wrk}, 1 thread, 32 connections"
        if use_wrk
        else f"Python fallback: raw HTTP/1.1 keep-alive client on {loop}, 32 connections"
    )
    if not use_wrk and args.generator == "auto":
        log.print("[yellow]wrk not found[/yellow]: falling back to the Python load generator")
    env = environment(stores if args.no_multi_gateway else [*stores, multi_store], generator)
    started = time.monotonic()
    cpu = CpuWatch()
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    results: list[StoreResult] = []
    multi: MultiResult | None = None
    try:
        if not args.multi_gateway_only:
            with bare_server(tmp) as bare_url:
                for url in stores:
                    results.append(run_store(url, plan, use_wrk, tmp, bare_url))
        if not args.no_multi_gateway:
            multi = bench_multi_gateway(multi_store, plan, use_wrk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    env.append(("Load average", f"{load_avg} (1/5/15 min) at the start"))
    env.append(("CPU during the run", cpu.summary()))
    render(results, plan, env)
    if multi is not None:
        render_multi(multi, plan)
    console.print(
        f"[dim]{'quick' if args.quick else 'full'} run, "
        f"{time.monotonic() - started:.0f} s wall[/dim]"
    )
    if args.json:
        data = {**to_json(results, env, plan), "multi_gateway": multi_json(multi)}
        args.json.write_text(json.dumps(data, indent=2))
    failed = [r.skipped for r in results] + [multi.skipped if multi else None]
    return 1 if any(f and f.startswith("failed") for f in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
