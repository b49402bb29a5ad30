"""Large bodies must not stall the gateway: `/healthz` latency while big `/run` bodies arrive.

    .venv/bin/python bench/big_bodies.py            # 8 senders × 9 MB bodies, 500,000 keys
    .venv/bin/python bench/big_bodies.py --quick    # smaller, for a smoke run

A real `podium serve` (SQLite, --no-rate-limits) gets `--senders` concurrent streams of
`/run` bodies of ~9 MB holding 500,000 keys each (`--bodies` per sender), while one prober
calls `/healthz` back to back on a keep-alive connection and records every latency. Run
twice: with large bodies decoded on the event loop (PODIUM_DECODE_OFF_LOOP_BYTES set
above the body size: what the gateway did before) and with the default (bodies over 256 KB
decoded in a helper process). Target (issue 9): /healthz p99 ≤ 100 ms under that load.
Every loop is bounded in count and time; every target is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

import control_plane as cp
from _load import percentile

console = Console() if sys.stdout.isatty() else Console(width=130)
INLINE = str(1 << 40)  # a threshold no body reaches: every body decoded on the loop


@dataclass
class Result:
    mode: str
    probes: list[float]
    runs_ok: int
    runs_failed: int
    seconds: float
    body_mb: float


def _body(keys: int) -> bytes:
    return json.dumps({"input": {f"k{i}": i for i in range(keys)}}).encode()


def _sender(port: int, key: str, ep: str, body: bytes, n: int, out: list[int]) -> None:
    conn = http.client.HTTPConnection(cp.HOST, port, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for _ in range(n):
        conn.request("POST", f"/v2/{ep}/run", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append(resp.status)
    conn.close()


def _probe(port: int, stop: threading.Event, out: list[float], limit_s: float) -> None:
    conn = http.client.HTTPConnection(cp.HOST, port, timeout=30)
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)
    conn.close()


def run(mode: str, env_value: str | None, args: argparse.Namespace, body: bytes) -> Result:
    with tempfile.TemporaryDirectory(prefix="podium-big-") as tmp:
        gw = cp.Gateway(Path(tmp) / "gw", None)
        clean_env = cp.clean_env
        if env_value is not None:  # the gateway's environment is cp.clean_env()'s
            cp.clean_env = lambda: {**clean_env(), "PODIUM_DECODE_OFF_LOOP_BYTES": env_value}
        try:
            gw.start()
        finally:
            cp.clean_env = clean_env
        try:
            ep = gw.create_endpoint("big")["id"]
            key = gw.admin_key
            # warm up: the first large body starts the decoding process
            _sender(gw.port, key, ep, body, 1, [])
            probes: list[float] = []
            statuses: list[int] = []
            stop = threading.Event()
            prober = threading.Thread(target=_probe, args=(gw.port, stop, probes, 600))
            senders = [
                threading.Thread(
                    target=_sender, args=(gw.port, key, ep, body, args.bodies, statuses)
                )
                for _ in range(args.senders)
            ]
            prober.start()
            started = time.monotonic()
            for t in senders:
                t.start()
            for t in senders:
                t.join(600)
            seconds = time.monotonic() - started
            stop.set()
            prober.join(30)
            ok = sum(1 for s in statuses if s == 200)
            return Result(mode, probes, ok, len(statuses) - ok, seconds, len(body) / 1e6)
        finally:
            gw.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--senders", type=int, default=8)
    p.add_argument("--bodies", type=int, default=3, help="bodies per sender")
    p.add_argument("--keys", type=int, default=500_000)
    p.add_argument("--quick", action="store_true", help="2 senders, 1 body, 100,000 keys")
    args = p.parse_args(argv)
    if args.quick:
        args.senders, args.bodies, args.keys = 2, 1, 100_000
    body = _body(args.keys)
    results = [
        run("on the event loop (before)", INLINE, args, body),
        run("in a helper process (now)", None, args, body),
    ]
    env = cp.environment(["sqlite"], "http.client threads")
    for name, value in env:
        console.print(f"[bold]{name}[/bold]: {value}")
    table = Table(
        title=f"/healthz under {args.senders} senders × {args.bodies} `/run` bodies of "
        f"{results[0].body_mb:.1f} MB ({args.keys:,} keys)"
    )
    for col in (
        "large bodies decoded",
        "/healthz p50",
        "p99",
        "max",
        "probes",
        "/run ok",
        "/run failed",
        "bodies/s",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r.mode,
            f"{percentile(r.probes, 50):.1f} ms",
            f"{percentile(r.probes, 99):.1f} ms",
            f"{max(r.probes):.1f} ms",
            str(len(r.probes)),
            str(r.runs_ok),
            str(r.runs_failed),
            f"{r.runs_ok / r.seconds:.2f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
