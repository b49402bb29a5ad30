"""Load-balancing proxy: what Podium's gateway adds in front of one worker's own HTTP server,
against the same worker called directly and through nginx (the yardstick reverse proxy).

One `podium serve` (fresh data dir, --gpus none, --no-rate-limits, auth on with
DATA_DIR/admin.key) runs one LOAD_BALANCER endpoint (workersMin = workersMax = 1) whose
worker is tests/lb_app.py (FastAPI on uvicorn, `POST /generate` echoes a small JSON body).
The worker's port is read from its process's environment (PORT; its pid is in the
endpoint's workers list). The same worker is then called three ways:

    direct    http://127.0.0.1:PORT/generate
    gateway   http://127.0.0.1:GW/lb/ENDPOINT_ID/generate   (Authorization: Bearer KEY)
    nginx     http://127.0.0.1:NG/generate   nginx from Debian, 1 worker process, an
              upstream keep-alive pool of 64 (`proxy_http_version 1.1`), no access log:
              a minimal conf of its own in a temp dir (`nginx -c conf -p tmp`), run in the
              foreground and ended by its pid. Installed with apt-get when missing.

Every target gets the same request (same body, same headers, the Authorization too).

    latency     N sequential POSTs on one keep-alive httpx.Client per target, after a
                warm-up; the targets take turns in blocks of 100 (A B C A B C ...), so
                each sees the same background load; p50 / p99, and each proxy's added
                p50 / p99 over direct.
    throughput  requests/s with C concurrent keep-alive connections: `wrk` (1 thread; a C
                program, so the client is not the bottleneck on a 2-core machine) when
                installed (apt-get install wrk), else bench/_load.py's raw asyncio client;
                each target warmed up, then the three in turn, `--repeats` times
                `--seconds` each, the run with the median requests/s kept. The CPU the
                proxy process took (gateway: its whole process, the supervisor included;
                nginx: master + worker) is shown per request.

Targets (issue: load-balancing endpoints): gateway p50 added ≤ 1 ms; gateway throughput
≥ 0.5x direct and ≥ 0.5x nginx. The script prints whether each was met on this run; it
asserts nothing. Everything runs on 127.0.0.1; everything it starts (the gateway, with its
worker, and nginx) is ended by its process id.

    .venv/bin/python bench/lb_proxy.py                        # ~1.5 min
    .venv/bin/python bench/lb_proxy.py --requests 500 --seconds 2 --repeats 1   # smoke
    .venv/bin/python bench/lb_proxy.py --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

import _load
from cold_start import machine
from fleet_cold import _free_port, _process, _wait
from podium.settings import ADMIN_KEY_FILE

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
APP = REPO / "tests" / "lb_app.py"
NGINX = "/usr/sbin/nginx"
BODY = {"prompt": "a small JSON body", "n": 1, "temperature": 0.7}
BLOCK = 100  # sequential requests per target per turn
TARGETS = ("direct", "gateway", "nginx")
P50_ADDED_MS = 1.0
RATIO = 0.5


@dataclass
class Latency:
    target: str
    requests: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class Throughput:
    target: str
    generator: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    runs: list[float]  # requests/s of each measured run
    proxy_cpu_ms_per_req: float | None  # the proxy process's CPU per request (median run)


@dataclass
class Target:
    name: str
    url: str
    proxy_pid: int | None  # whose CPU to count (None: direct)


# --- what runs --------------------------------------------------------------------------


@contextlib.contextmanager
def gateway(tmp: Path, env: dict[str, str]) -> Iterator[tuple[str, str, int]]:
    """`podium serve` of our own: (its url, the admin key, its pid)."""
    data, port = tmp / "data", _free_port()
    argv = [
        PY, "-m", "podium.cli", "serve", "--port", str(port), "--data-dir", str(data),
        "--gpus", "none", "--supervisor-tick-s", "0.2", "--no-rate-limits",
        "--log-level", "warning",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = tmp / "gateway.log"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    with _process(argv, log, env, tmp) as proc:
        _wait(up, 120, f"the gateway (log: {log})")
        yield url, (data / ADMIN_KEY_FILE).read_text().strip(), proc.pid


def lb_endpoint(c: httpx.Client) -> tuple[str, int, str]:
    """A one-worker LOAD_BALANCER endpoint of tests/lb_app.py, once its worker is ready:
    (endpoint id, the worker's port, the worker's id)."""
    spec = {
        "name": "lb-bench",
        "type": "LOAD_BALANCER",
        "templateId": "custom",
        "command": f"{PY} {APP}",
        "workersMin": 1,
        "workersMax": 1,
    }
    ep = c.post("/v1/endpoints", json=spec).raise_for_status().json()["id"]

    def ready() -> dict[str, Any] | None:
        answer = c.get(f"/v1/endpoints/{ep}", params={"includeWorkers": "true"})
        workers = answer.raise_for_status().json().get("workers") or []
        return next((w for w in workers if w.get("health") == "ready" and w.get("pid")), None)

    worker = _wait(ready, 120, f"the worker of endpoint {ep} to be ready")
    proc = psutil.Process(worker["pid"])
    port = next(
        (int(p.environ()["PORT"]) for p in [proc, *proc.children(recursive=True)]
         if "PORT" in p.environ()),
        None,
    )  # fmt: skip
    if port is None:
        raise RuntimeError(f"the worker process {worker['pid']} has no PORT in its environment")
    return ep, port, worker["id"]


def nginx_version() -> str:
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    return (out.stderr + out.stdout).strip().removeprefix("nginx version: ")


def ensure_nginx() -> None:
    if Path(NGINX).exists():
        return
    print("nginx missing: apt-get install -y nginx ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "nginx"]
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        subprocess.run(install, capture_output=True, env=env, check=True)


def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "wrk"],
            capture_output=True, env=env, check=False,
        )  # fmt: skip  # optional: without it, the Python fallback


NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    upstream w {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://w;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(tmp: Path, upstream: int, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """nginx in front of the worker: (its url, its master's pid)."""
    root = tmp / "nginx"
    root.mkdir()
    port = _free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=root, upstream=upstream, port=port))
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    with _process([NGINX, "-c", str(conf), "-p", str(root)], root / "stdout.log", env, tmp) as p:
        _wait(up, 30, f"nginx on {port} (log: {root / 'error.log'})")
        yield url, p.pid


# --- measuring --------------------------------------------------------------------------


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _proxy_cpu_s(target: Target, gateway_pid: int) -> float:
    """The proxy process's CPU: the gateway process alone (not its worker, a child of its
    fleet); nginx master + worker."""
    if target.proxy_pid is None:
        return 0.0
    if target.proxy_pid == gateway_pid:
        t = psutil.Process(gateway_pid).cpu_times()
        return float(t.user + t.system)
    return _cpu_s(target.proxy_pid)


def latency(targets: list[Target], headers: dict[str, str], n: int, warm: int) -> list[Latency]:
    clients = {t.name: httpx.Client(headers=headers, timeout=30, trust_env=False) for t in targets}
    seconds: dict[str, list[float]] = {t.name: [] for t in targets}
    statuses: dict[str, Counter[str]] = {t.name: Counter() for t in targets}
    try:
        for t in targets:
            for _ in range(warm):
                clients[t.name].post(t.url, json=BODY)
        done = 0
        while done < n:
            block = min(BLOCK, n - done)
            for t in targets:
                c, out, codes = clients[t.name], seconds[t.name], statuses[t.name]
                for _ in range(block):
                    t0 = time.perf_counter()
                    try:
                        r = c.post(t.url, json=BODY)
                        codes[str(r.status_code)] += 1
                    except httpx.HTTPError as exc:
                        codes[type(exc).__name__] += 1
                        continue
                    out.append(time.perf_counter() - t0)
            done += block
    finally:
        for c in clients.values():
            c.close()
    return [
        Latency(
            target=t.name,
            requests=len(seconds[t.name]),
            p50_ms=_load.percentile(seconds[t.name], 50) * 1000,
            p99_ms=_load.percentile(seconds[t.name], 99) * 1000,
            mean_ms=statistics.fmean(seconds[t.name]) * 1000,
            statuses=dict(statuses[t.name]),
        )
        for t in targets
    ]


def throughput(
    targets: list[Target],
    headers: dict[str, str],
    connections: int,
    seconds: float,
    repeats: int,
    use_wrk: bool,
    gateway_pid: int,
) -> list[Throughput]:
    kw = {
        "method": "POST",
        "body": json.dumps(BODY),
        "headers": {**headers, "Content-Type": "application/json"},
        "connections": connections,
    }
    for t in targets:  # warm-up
        _load.run_load(t.url, use_wrk=use_wrk, seconds=1, **kw)
    runs: dict[str, list[tuple[_load.LoadResult, float]]] = {t.name: [] for t in targets}
    for _ in range(repeats):
        for t in targets:
            cpu0 = _proxy_cpu_s(t, gateway_pid)
            result = _load.run_load(t.url, use_wrk=use_wrk, seconds=seconds, **kw)
            runs[t.name].append((result, _proxy_cpu_s(t, gateway_pid) - cpu0))
    out = []
    for t in targets:
        ordered = sorted(runs[t.name], key=lambda rc: rc[0].rps)
        median, cpu = ordered[len(ordered) // 2]
        out.append(
            Throughput(
                target=t.name,
                generator=median.generator,
                connections=connections,
                rps=median.rps,
                p50_ms=median.p50_ms,
                p99_ms=median.p99_ms,
                errors=sum(r.errors for r, _ in runs[t.name]),
                runs=[round(r.rps, 1) for r, _ in runs[t.name]],
                proxy_cpu_ms_per_req=(
                    cpu / median.requests * 1000
                    if t.proxy_pid is not None and median.requests
                    else None
                ),
            )
        )
    return out


def host_form(gw_url: str, ep: str, headers: dict[str, str]) -> str:
    """One request in RunPod's URL shape (Host: ENDPOINT_ID.localhost:PORT): its status."""
    port = gw_url.rsplit(":", 1)[1]
    try:
        r = httpx.post(
            f"{gw_url}/generate",
            json=BODY,
            headers={**headers, "Host": f"{ep}.localhost:{port}"},
            timeout=30,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    ok = r.status_code == 200 and r.json().get("echo") == BODY
    return f"{r.status_code}{'' if ok else ' (not the echo: ' + r.text[:200] + ')'}"


# --- report -----------------------------------------------------------------------------


def versions(use_wrk: bool) -> dict[str, str]:
    info = machine()
    info.pop("torch", None)  # not used here
    info.pop("diffusers", None)
    info.pop("gpu", None)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    for package in ("podium", "uvicorn", "uvloop", "httptools", "httpx", "aiohttp", "fastapi"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    info["nginx"] = nginx_version()
    info["load generator"] = (_load.wrk_version() or "wrk") if use_wrk else "python-asyncio"
    return info


def _fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(
    lat: list[Latency],
    thr: list[Throughput],
    info: dict[str, str],
    args: Any,
    extra: dict[str, Any],
) -> str:
    by_lat = {r.target: r for r in lat}
    by_thr = {r.target: r for r in thr}
    d = by_lat["direct"]
    lines = [
        "machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        f"load average (1 min) at start {extra['load_start']:.2f}, at end {extra['load_end']:.2f}",
        f"one worker: tests/lb_app.py (uvicorn) on port {extra['worker_port']}; gateway pid "
        f"{extra['gateway_pid']}; Host-header form ({extra['endpoint']}.localhost): "
        f"{extra['host_form']}",
        "",
        f"Latency: {args.requests} sequential POSTs of a {len(json.dumps(BODY))}-byte JSON body "
        f"per target (after {args.warmup} warm-up), one keep-alive httpx.Client each, targets "
        f"in turn in blocks of {BLOCK}; ms",
        "",
        "| target | requests | p50 | p99 | mean | added p50 | added p99 | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in lat:
        added = (
            ("", "")
            if r.target == "direct"
            else (f"{r.p50_ms - d.p50_ms:+.3f}", f"{r.p99_ms - d.p99_ms:+.3f}")
        )
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        lines.append(
            f"| {r.target} | {r.requests} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.mean_ms:.3f} | "
            f"{added[0]} | {added[1]} | {answers} |"
        )
    gen = thr[0].generator
    lines += [
        "",
        f"Throughput: {args.concurrency} concurrent keep-alive connections ({gen}"
        + (", 1 thread" if gen == "wrk" else "")
        + f"), {args.seconds:g} s a run, the three in turn {args.repeats}x after a 1 s warm-up "
        "each; the run with the median requests/s",
        "",
        "| target | req/s | vs direct | vs nginx | p50 ms | p99 ms | errors | runs (req/s) "
        "| proxy CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in thr:
        cpu = "" if t.proxy_cpu_ms_per_req is None else f"{t.proxy_cpu_ms_per_req:.3f}"
        lines.append(
            f"| {t.target} | {t.rps:,.0f} | {_fmt_ratio(t.rps, by_thr['direct'].rps)} | "
            f"{_fmt_ratio(t.rps, by_thr['nginx'].rps)} | {t.p50_ms:.2f} | {t.p99_ms:.2f} | "
            f"{t.errors} | {', '.join(f'{x:,.0f}' for x in t.runs)} | {cpu} |"
        )
    g, n = by_lat["gateway"], by_lat["nginx"]
    gt, dt, nt = by_thr["gateway"], by_thr["direct"], by_thr["nginx"]

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines += [
        "",
        "| target (issue) | this run | |",
        "|---|---:|---|",
        f"| gateway p50 added ≤ {P50_ADDED_MS:g} ms | {g.p50_ms - d.p50_ms:+.3f} ms "
        f"(nginx {n.p50_ms - d.p50_ms:+.3f} ms) | {met(g.p50_ms - d.p50_ms <= P50_ADDED_MS)} |",
        f"| gateway throughput ≥ {RATIO:g}x direct | {gt.rps / dt.rps:.2f}x | "
        f"{met(gt.rps >= RATIO * dt.rps)} |",
        f"| gateway throughput ≥ {RATIO:g}x nginx | {gt.rps / nt.rps:.2f}x | "
        f"{met(gt.rps >= RATIO * nt.rps)} |",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="sequential POSTs a target")
    ap.add_argument("--warmup", type=int, default=200, help="sequential warm-up POSTs a target")
    ap.add_argument("--concurrency", type=int, default=32, help="connections (throughput)")
    ap.add_argument("--seconds", type=float, default=5.0, help="one throughput run, seconds")
    ap.add_argument("--repeats", type=int, default=3, help="throughput runs a target")
    ap.add_argument("--no-wrk", action="store_true", help="the Python load generator")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if not 1 <= args.requests <= 100_000:
        ap.error("--requests must be 1 to 100000")
    if not 1 <= args.concurrency <= 1024:
        ap.error("--concurrency must be 1 to 1024")
    if not 1 <= args.seconds <= 120 or not 1 <= args.repeats <= 20:
        ap.error("--seconds must be 1 to 120, --repeats 1 to 20")

    ensure_nginx()
    if not args.no_wrk:
        ensure_wrk()
    use_wrk = not args.no_wrk and _load.wrk_version() is not None
    tmp = Path(tempfile.mkdtemp(prefix="podium-lb-proxy-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    extra: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    try:
        with contextlib.ExitStack() as stack:
            gw_url, key, gw_pid = stack.enter_context(gateway(tmp, env))
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=gw_url, headers=auth, timeout=60, trust_env=False) as c:
                ep, port, worker_id = lb_endpoint(c)
            print(f"endpoint {ep}, worker {worker_id} on port {port}", file=sys.stderr)
            ng_url, ng_pid = stack.enter_context(nginx(tmp, port, env))
            targets = [
                Target("direct", f"http://127.0.0.1:{port}/generate", None),
                Target("gateway", f"{gw_url}/lb/{ep}/generate", gw_pid),
                Target("nginx", f"{ng_url}/generate", ng_pid),
            ]
            for t in targets:  # each answers with the worker's echo
                r = httpx.post(t.url, json=BODY, headers=auth, timeout=30, trust_env=False)
                if r.status_code != 200 or r.json().get("echo") != BODY:
                    raise RuntimeError(f"{t.name}: {r.status_code} {r.text[:300]}")
            extra |= {
                "worker_port": port,
                "gateway_pid": gw_pid,
                "endpoint": ep,
                "host_form": host_form(gw_url, ep, auth),
            }
            print("latency ...", file=sys.stderr, flush=True)
            lat = latency(targets, auth, args.requests, args.warmup)
            print("throughput ...", file=sys.stderr, flush=True)
            thr = throughput(
                targets, auth, args.concurrency, args.seconds, args.repeats, use_wrk, gw_pid
            )
            extra["load_end"] = os.getloadavg()[0]
            log = (tmp / "gateway.log").read_text(errors="replace").splitlines()
            extra["gateway_log"] = [  # its warnings and errors (not the banner: the key)
                line
                for line in log
                if any(w in line for w in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback"))
                and "No GPU found" not in line
            ][-40:]
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    info = versions(use_wrk)
    print()
    print(report(lat, thr, info, args, extra))
    print("\ngateway log, warnings and errors: " + ("\n".join(extra["gateway_log"]) or "none"))
    if args.json:
        payload = {
            "machine": info,
            "args": vars(args) | {"json": str(args.json)},
            "extra": extra,
            "latency": [asdict(r) for r in lat],
            "throughput": [asdict(r) for r in thr],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
