"""Soak: mixed clients and workers on each store, with workers and a gateway killed -9.

    .venv/bin/python bench/soak.py                      # 5 minutes per store, SQLite + Redis
    .venv/bin/python bench/soak.py --minutes 1          # a short run
    .venv/bin/python bench/soak.py --store sqlite

Per store, one real `podium serve` (ping interval 1 s, so a lost worker's jobs come back
within 3 s) and two endpoints: `plain` (two `podium worker` processes running an echo that
takes 0–50 ms) and `stream` (two running a generator). Client threads, for the whole run:
`/run` (each acknowledged id remembered with the output it must end with), `/runsync`,
`/status` of random known jobs, a streamer (submit on `stream`, read `/stream` until final,
check every chunk arrived once, in order), and a canceller (submit, cancel). Chaos: one
worker killed -9 (and restarted) every minute; the gateway killed -9 once, halfway, and
restarted on the same store. At the end the load stops and every acknowledged `/run` job
must reach a final status with the right output: one that is missing, never ends, or ends
with another output is LOST (must be 0). Reported: acknowledged jobs, lost, failed (with
their errors), 5xx answers (must be 0), connection errors (the gateway's own restart), and
the gateway's RSS over time. Every loop is bounded in count and time; every target is
127.0.0.1. A Redis store URL's database is flushed before and after its run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

import control_plane as cp

HERE = Path(__file__).resolve().parent
console = Console() if sys.stdout.isatty() else Console(width=150)
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
PING_MS = 1000


@dataclass
class Tally:
    """What the clients saw; threads append under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # /run id -> its input
    cancelled: set[str] = field(default_factory=set)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    conn_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    runsync_done: int = 0
    streams_checked: int = 0

    def note(self, route: str, response: httpx.Response | None) -> None:
        with self.lock:
            self.calls[route] += 1
            if response is None:
                self.conn_errors[route] += 1
            elif response.status_code >= 500:
                self.server_errors[route] += 1
                self.problems.append(f"{route} {response.status_code}: {response.text[:200]}")


def call(http: httpx.Client, tally: Tally, route: str, method: str, url: str, **kw: Any) -> Any:
    try:
        response = http.request(method, url, **kw)
    except httpx.HTTPError:
        tally.note(route, None)
        time.sleep(0.2)  # the gateway is restarting
        return None
    tally.note(route, response)
    return response


class Soak:
    def __init__(self, store: str | None, minutes: float, tmp: Path) -> None:
        self.store, self.minutes, self.tmp = store, minutes, tmp
        self.gw = cp.Gateway(
            tmp / "gw", store, extra_args=["--ping-interval-ms", str(PING_MS), "--no-supervisor"]
        )
        self.tally = Tally()
        self.stop = threading.Event()
        self.workers: list[tuple[str, Any]] = []  # (endpoint, process)
        self.rss: list[tuple[float, float]] = []
        self.chaos: list[str] = []
        self.rng = random.Random(11)

    # --- processes -----------------------------------------------------------------------

    def start_worker(self, ep: dict[str, Any], handler: str, i: int) -> Any:
        args = [
            sys.executable,
            "-m",
            "podium.worker",
            f"{HERE / 'soak_handlers.py'}:{handler}",
            "--gateway",
            self.gw.url,
            "--endpoint",
            ep["id"],
            "--token",
            ep["workerToken"],
        ]
        env = {**cp.clean_env(), "RUNPOD_PING_INTERVAL": str(PING_MS)}
        return cp.spawn(args, self.tmp / f"worker-{handler}-{i}.log", env)

    def kill_a_worker(self) -> None:
        n = self.rng.randrange(len(self.workers))
        ep_handler, proc = self.workers[n]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        ep, handler = ep_handler
        self.workers[n] = (ep_handler, self.start_worker(ep, handler, 100 + len(self.chaos)))
        self.chaos.append(f"{self.elapsed():.0f} s: worker kill -9 ({handler})")

    def kill_the_gateway(self) -> None:
        assert self.gw.proc is not None
        os.killpg(self.gw.proc.pid, signal.SIGKILL)
        self.gw.proc.wait(10)
        self.chaos.append(f"{self.elapsed():.0f} s: gateway kill -9")
        self.gw.start()
        self.chaos.append(f"{self.elapsed():.0f} s: gateway back")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- clients -------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.gw.url, headers={"Authorization": self.gw.admin_key}, timeout=60
        )

    def runner(self, ep: str) -> None:
        with self.client() as http:
            n = 0
            while not self.stop.is_set() and n < 200_000:
                n += 1
                inp = {"n": n, "ms": self.rng.choice([0, 0, 10, 50]), "pad": "x" * 200}
                r = call(http, self.tally, "run", "POST", f"/v2/{ep}/run", json={"input": inp})
                if r is not None and r.status_code == 200:
                    with self.tally.lock:
                        self.tally.acked[r.json()["id"]] = inp
                time.sleep(0.05)  # well within what the workers drain: no backlog grows

    def syncer(self, ep: str) -> None:
        with self.client() as http:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                inp = {"sync": n}
                r = call(
                    http,
                    self.tally,
                    "runsync",
                    "POST",
                    f"/v2/{ep}/runsync?wait=20000",
                    json={"input": inp},
                )
                if r is not None and r.status_code == 200:
                    body = r.json()
                    if body["status"] == "COMPLETED" and body["output"] != {"echo": inp}:
                        self.tally.problems.append(f"runsync {body['id']}: wrong output")
                    with self.tally.lock:
                        self.tally.runsync_done += body["status"] == "COMPLETED"

    def poller(self, ep: str) -> None:
        with self.client() as http:
            for _ in range(1_000_000):
                if self.stop.is_set():
                    return
                with self.tally.lock:
                    ids = list(self.tally.acked)[-500:]
                if ids:
                    call(
                        http, self.tally, "status", "GET", f"/v2/{ep}/status/{self.rng.choice(ids)}"
                    )
                time.sleep(0.02)

    def streamer(self, ep: str) -> None:
        with self.client() as http:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                r = call(
                    http,
                    self.tally,
                    "run",
                    "POST",
                    f"/v2/{ep}/run",
                    json={"input": {"n": 5, "tag": n}},
                )
                if r is None or r.status_code != 200:
                    continue
                job_id, got, status = r.json()["id"], [], "IN_QUEUE"
                deadline = time.monotonic() + 60
                while status not in FINAL and time.monotonic() < deadline:
                    s = call(http, self.tally, "stream", "GET", f"/v2/{ep}/stream/{job_id}")
                    if s is None or s.status_code != 200:
                        break
                    body = s.json()
                    status = body["status"]
                    got += [c["output"]["i"] for c in body["stream"]]
                    time.sleep(0.05)
                # (a job retried after a worker kill streams again from its start)
                if status == "COMPLETED" and got[-5:] != list(range(5)):
                    self.tally.problems.append(f"stream {job_id}: chunks {got}")
                with self.tally.lock:
                    self.tally.streams_checked += status == "COMPLETED"

    def canceller(self, ep: str) -> None:
        with self.client() as http:
            for _ in range(100_000):
                if self.stop.is_set():
                    return
                r = call(
                    http,
                    self.tally,
                    "run",
                    "POST",
                    f"/v2/{ep}/run",
                    json={"input": {"ms": 50, "cancel": True}},
                )
                if r is not None and r.status_code == 200:
                    job_id = r.json()["id"]
                    c = call(http, self.tally, "cancel", "POST", f"/v2/{ep}/cancel/{job_id}")
                    if c is not None and c.status_code == 200:
                        with self.tally.lock:
                            self.tally.cancelled.add(job_id)
                time.sleep(0.1)

    # --- the run -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.gw.start()
        self.started = time.monotonic()
        plain = self.gw.create_endpoint("plain")
        stream = self.gw.create_endpoint("stream")
        for i in range(2):
            self.workers.append(((plain, "echo"), self.start_worker(plain, "echo", i)))
            self.workers.append(((stream, "chunks"), self.start_worker(stream, "chunks", i)))
        threads = [
            threading.Thread(target=self.runner, args=(plain["id"],)),
            threading.Thread(target=self.runner, args=(plain["id"],)),
            threading.Thread(target=self.syncer, args=(plain["id"],)),
            threading.Thread(target=self.poller, args=(plain["id"],)),
            threading.Thread(target=self.streamer, args=(stream["id"],)),
            threading.Thread(target=self.canceller, args=(plain["id"],)),
        ]
        for t in threads:
            t.start()
        total = self.minutes * 60
        next_kill, gateway_killed = 60.0, False
        try:
            while self.elapsed() < total:
                time.sleep(1)
                if len(self.rss) == 0 or self.elapsed() - self.rss[-1][0] >= 10:
                    with contextlib.suppress(psutil.Error):
                        rss = psutil.Process(self.gw.proc.pid).memory_info().rss / 2**20
                        self.rss.append((self.elapsed(), rss))
                if self.elapsed() >= next_kill:
                    self.kill_a_worker()
                    next_kill += 60
                if not gateway_killed and self.elapsed() >= total / 2:
                    self.kill_the_gateway()
                    gateway_killed = True
        finally:
            self.stop.set()
            for t in threads:
                t.join(90)
        return self.settle(plain["id"])

    def settle(self, ep: str) -> dict[str, Any]:
        """Every acknowledged /run job must end, with the output it was sent for."""
        pending = dict(self.tally.acked)
        final: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 180
        with self.client() as http:
            while pending and time.monotonic() < deadline:
                for job_id in list(pending)[:200]:
                    r = call(http, self.tally, "status", "GET", f"/v2/{ep}/status/{job_id}")
                    if r is None:
                        continue
                    if r.status_code == 404:
                        final[job_id] = {"status": "MISSING"}
                        del pending[job_id]
                    elif r.json()["status"] in FINAL:
                        final[job_id] = r.json()
                        del pending[job_id]
                time.sleep(0.2)
        lost, failed = [], collections.Counter()
        for job_id, inp in self.tally.acked.items():
            st = final.get(job_id, {"status": "NEVER FINAL"})
            if job_id in self.tally.cancelled and st["status"] in ("CANCELLED", "COMPLETED"):
                continue
            if st["status"] == "COMPLETED" and st.get("output") == {"echo": inp}:
                continue
            if st["status"] in ("FAILED", "TIMED_OUT"):
                failed[st.get("error", "")[:120]] += 1
                continue
            lost.append(f"{job_id}: {st['status']} {str(st.get('output'))[:80]}")
        for _, proc in self.workers:
            cp.stop(proc, grace=5)
        self.gw.stop()
        return {"lost": lost, "failed": failed}


def report(label: str, soak: Soak, result: dict[str, Any]) -> Table:
    t = soak.tally
    table = Table(title=f"soak on {label}: {soak.minutes:g} min")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("acknowledged /run jobs", f"{len(t.acked):,}")
    table.add_row("lost (must be 0)", str(len(result["lost"])))
    table.add_row("failed / timed out (honest errors)", str(sum(result["failed"].values())))
    table.add_row("cancelled", f"{len(t.cancelled):,}")
    table.add_row("/runsync completed", f"{t.runsync_done:,}")
    table.add_row("streams read whole", f"{t.streams_checked:,}")
    table.add_row("calls", ", ".join(f"{k} {v:,}" for k, v in sorted(t.calls.items())))
    table.add_row("5xx answers (must be 0)", str(sum(t.server_errors.values())))
    table.add_row(
        "connection errors (gateway restart)",
        ", ".join(f"{k} {v}" for k, v in sorted(t.conn_errors.items())) or "0",
    )
    table.add_row("other problems", str(len(t.problems)))
    table.add_row("chaos", "; ".join(soak.chaos))
    series = " ".join(f"{s:.0f}s:{m:.0f}" for s, m in soak.rss[:: max(1, len(soak.rss) // 12)])
    table.add_row("gateway RSS MiB (time:MiB)", series)
    if soak.rss:
        table.add_row(
            "gateway RSS min / max",
            f"{min(m for _, m in soak.rss):.0f} / {max(m for _, m in soak.rss):.0f} MiB",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="per store")
    p.add_argument("--store", action="append", help="sqlite or a redis:// URL (repeatable)")
    args = p.parse_args(argv)
    stores = args.store or ["sqlite", "redis://127.0.0.1:6379/14"]
    for name, value in cp.environment(stores, "httpx threads"):
        console.print(f"[bold]{name}[/bold]: {value}")
    bad = 0
    for store in stores:
        url = None if store == "sqlite" else store
        if url:
            cp.flush_redis(url)
        with tempfile.TemporaryDirectory(prefix="podium-soak-") as tmp:
            soak = Soak(url, args.minutes, Path(tmp))
            try:
                result = soak.run()
            finally:
                if url:
                    cp.flush_redis(url)
            console.print(report(cp.store_label(store if url else "sqlite"), soak, result))
            for line in result["lost"][:20] + soak.tally.problems[:20]:
                console.print(f"  [red]{line}[/red]")
            for error, n in result["failed"].most_common(5):
                console.print(f"  failed ×{n}: {error}")
            bad += len(result["lost"]) + sum(soak.tally.server_errors.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
