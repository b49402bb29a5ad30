"""Worker logs: what storing and reading them costs, and how fast a shipper gets a noisy
worker's lines into a real gateway.

    cd bench && ../.venv/bin/python worker_logs.py              # SQLite and Redis
    cd bench && ../.venv/bin/python worker_logs.py --workers 4  # a smoke run

1. Store (in-process, each store): `--workers` workers of one endpoint each append their
   full bound (PODIUM_LOG_LINES_PER_WORKER default, 5000 lines of ~120 bytes, every 10th
   tagged with a job) in batches of 200, through `store.logs.append` (the worker route's
   whole store cost); lines/s. Then `store.logs.read` `--repeat` times: the endpoint's
   last 100 lines, one worker's last 100, a job's 10 lines (by the job's index), and a
   follower's poll with nothing new (`since` = the cursor); p50 /
   p99.
2. Path (a real `podium serve` on SQLite, 127.0.0.1): a LogShipper reads `--lines` lines
   written into a pipe as fast as a process can and ships them with HttpLogSink; the
   time until the gateway has the last one, as lines/s, and the batches it took.
Redis: 127.0.0.1:6379 db 14 under a fresh key prefix, deleted afterwards. Every loop is
bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import control_plane as cp
from _load import percentile
from podium.clock import ManualClock
from podium.logs.lines import LINES_PER_WORKER_DEFAULT, LogBudget, LogLine, LogQuery
from podium.logs.shipper import HttpLogSink, LogShipper

console = Console() if sys.stdout.isatty() else Console(width=130)
EP = "bench-logs"
BATCH = 200
TEXT = "2026-12-01 12:00:00,000 podium.worker INFO step {i} of the job: loss=0.{i:05d} ok"


def _line(w: int, i: int) -> LogLine:
    return LogLine(1_700_000_000.0 + i / 1000, TEXT.format(i=i), (f"job-{w}-{i // 10}",))


async def bench_store(kind: str, url: str, workers: int, repeat: int) -> list[tuple]:
    clock = ManualClock()
    keep = LINES_PER_WORKER_DEFAULT
    rows: list[tuple] = []
    async with cp.scratch_store(url, clock) as store:
        began = time.perf_counter()
        for w in range(workers):
            for at in range(0, keep, BATCH):
                lines = [_line(w, i) for i in range(at, min(keep, at + BATCH))]
                await store.logs.append(EP, f"w{w}", lines, LogBudget(lines_per_worker=keep))
        took = time.perf_counter() - began
        rows.append((kind, f"append {workers * keep:,} lines ({BATCH}/batch)", took, None))
        top = (await store.logs.read(EP, LogQuery(tail=0))).cursor
        queries = [
            ("last 100 of the endpoint", LogQuery(tail=100)),
            ("last 100 of one worker", LogQuery(worker="w0", tail=100)),
            (f"a job's 10 lines among {workers * keep:,}", LogQuery(job="job-0-7", tail=100)),
            ("a follower's poll, nothing new", LogQuery(tail=10_000, since=top)),
        ]
        for name, query in queries:
            lat = []
            found = 0
            for _ in range(repeat):
                t = time.perf_counter()
                page = await store.logs.read(EP, query)
                lat.append(time.perf_counter() - t)
                found = len(page.lines)
            rows.append((kind, name, lat, found))
    return rows


def bench_path(tmp: Path, n: int) -> tuple[float, int, int]:
    """(seconds until the gateway holds the last of n lines, batches, lines it kept)."""
    gw = cp.Gateway(tmp / "gw", None).start()
    try:
        ep = gw.create_endpoint("bench-logs")
        sink = HttpLogSink(gw.url, ep["id"], "w1", ep["workerToken"])
        batches = 0
        send = sink.send

        def counted(lines, dropped) -> None:
            nonlocal batches
            batches += 1
            send(lines, dropped)

        sink.send = counted  # type: ignore[method-assign]
        read_fd, write_fd = os.pipe()
        shipper = LogShipper(os.fdopen(read_fd, "rb"), sink, name="bench").start()
        last = f"last line {n - 1}"

        def write() -> None:
            with os.fdopen(write_fd, "wb", buffering=1 << 16) as out:
                for i in range(n - 1):
                    out.write((TEXT.format(i=i) + "\n").encode())
                out.write((last + "\n").encode())

        began = time.perf_counter()
        writer = threading.Thread(target=write)
        writer.start()
        with gw.client() as c:

            def arrived() -> bool:
                r = c.get(f"/v1/endpoints/{ep['id']}/logs", params={"tail": 1})
                return bool(r.json()["lines"]) and r.json()["lines"][-1]["text"] == last

            cp.wait_until("the last line", arrived, timeout=300)
            took = time.perf_counter() - began
            kept = len(
                c.get(f"/v1/endpoints/{ep['id']}/logs", params={"tail": 10_000}).json()["lines"]
            )
        writer.join()
        shipper.finish()
        shipper.join(10)
        return took, batches, kept
    finally:
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            url = cp.scratch_url(kind, Path(tmp), "logs")
            rows += asyncio.run(bench_store(kind, url, args.workers, args.repeat))
        took, batches, kept = bench_path(Path(tmp), args.lines)
    env = Table(title="Environment", show_header=False)
    for k, v in cp.environment(
        [cp.STORE_REDIS] if "redis" in args.stores else [], "in-process store"
    ):
        env.add_row(k, v)
    console.print(env)
    table = Table(title=f"store.logs with {args.workers} workers x {LINES_PER_WORKER_DEFAULT}")
    for col in ("store", "operation", "lines", "p50 ms / total s", "p99 ms / lines/s"):
        table.add_column(col, justify="right" if col not in ("operation",) else "left")
    for store, name, lat, found in rows:
        if found is None:  # the append: a total time
            count = args.workers * LINES_PER_WORKER_DEFAULT
            table.add_row(store, name, f"{count:,}", f"{lat:.2f} s", f"{count / lat:,.0f}/s")
        else:
            p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
            table.add_row(store, name, str(found), f"{p50:.2f}", f"{p99:.2f}")
    console.print(table)
    path = Table(title="pipe -> LogShipper -> HttpLogSink -> podium serve (SQLite)")
    for col in ("lines written", "until the last is readable", "lines/s", "batches", "kept"):
        path.add_column(col, justify="right")
    path.add_row(
        f"{args.lines:,}", f"{took:.2f} s", f"{args.lines / took:,.0f}", str(batches), f"{kept:,}"
    )
    console.print(path)


if __name__ == "__main__":
    main()
