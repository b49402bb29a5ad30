"""The Metrics tab with 100,000 jobs: what `GET /v2/{ep}/metrics` costs the store, per interval.

    .venv/bin/python bench/metrics_series.py                     # 100,000 jobs over a week
    .venv/bin/python bench/metrics_series.py --jobs 10000,100000 # both, side by side
    .venv/bin/python bench/metrics_series.py --jobs 5000         # smaller, for a smoke run

For each store (a SQLite file; Redis at 127.0.0.1:6379 db 14 under a fresh key prefix,
deleted afterwards) the script records `--jobs` jobs spread evenly over the last week of
a manual clock through the gateway's own path: each job's submit, start (delay) and end
(status, execution time) go into a podium.series Recorder, a worker-state sample every
minute, a cold start every 20 minutes, and every 5 s of clock (the gateway's flush
period) the recorder is drained into `store.metrics.record` — so the store holds what a
week of that traffic leaves, in every tier. It then times what the route does for each
interval (`store.metrics.read` of the interval's window plus `series.series`, which
builds the answer: the route's whole cost but HTTP), `--repeat` times, against a
yardstick in the same run: the store's own round trip (`store.ping()`), and prints
p50 / p99 and the ratio. Also: the amortized write cost per job (the flushes' time over
the jobs) and what the store holds (rows / keys). Every loop is bounded in count;
every target is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import control_plane as cp
from _load import percentile
from podium import series
from podium.clock import ManualClock
from podium.store import JobStore

console = Console() if sys.stdout.isatty() else Console(width=130)
EP = "bench-metrics"
WEEK_S = 7 * 86400
FLUSH_S = 5.0


async def fill(store: JobStore, clock: ManualClock, n: int) -> tuple[float, int]:
    """Record n jobs over the week before the clock's start; (seconds the flushes took,
    flushes)."""
    rec = series.Recorder()
    end = clock.now()
    step = WEEK_S / n
    t = end - WEEK_S
    clock.advance(-WEEK_S)
    flush_s, flushes, next_flush, next_sample, next_cold = 0.0, 0, t, t, t
    for i in range(n):
        t = end - WEEK_S + i * step
        if t >= next_sample:
            rec.workers(EP, t, {"running": 2 + i % 3, "idle": 1, "initializing": i % 2})
            next_sample += 60
        if t >= next_cold:
            rec.cold_start(EP, t, 4.0 + (i % 7) * 0.5, restored=i % 2 == 0)
            next_cold += 1200
        delay = 0.02 + (i % 50) * 0.01
        execution = 0.4 + (i * 7919 % 1000) / 250
        rec.submitted(EP, t)
        rec.observe(EP, t + delay, "d", delay)
        status = "FAILED" if i % 20 == 0 else "COMPLETED"
        rec.ended(EP, t + delay + execution, status)
        rec.observe(EP, t + delay + execution, "e", execution)
        if i % 100 == 0:
            rec.retried(EP, t)
        if t >= next_flush:
            clock.advance(t - clock.now())
            t0 = time.perf_counter()
            await store.metrics.record(rec.drain())
            flush_s += time.perf_counter() - t0
            flushes += 1
            next_flush = t + FLUSH_S
    clock.advance(end - clock.now())
    t0 = time.perf_counter()
    await store.metrics.record(rec.drain())
    return flush_s + time.perf_counter() - t0, flushes + 1


async def timed(store: JobStore, iv: series.Interval, now: float, repeat: int):
    lat: list[float] = []
    total = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        start, end = iv.window(now)
        buckets = await store.metrics.read(EP, iv.width_s, start, end)
        body = series.series(EP, iv, now, buckets)
        lat.append(time.perf_counter() - t0)
        total = body["totals"]["requests"]["total"]
    return lat, total


def held(url: str, store: JobStore, now: float) -> str:
    """What the store holds once expiry has run at `now` (Redis drops keys on its own
    clock, hours away here: the keys its TTLs would have dropped are left out)."""
    if url.startswith("redis"):
        client = cp._redis_client(url)
        try:
            prefix = store.prefix  # type: ignore[attr-defined]
            keys = []
            for key in client.scan_iter(match=f"{prefix}:mx:*", count=1000):
                width, start = (int(x) for x in key.decode().rsplit(":", 2)[1:])
                if start >= series.kept_since(width, now):
                    keys.append(key)
            memory = sum(client.memory_usage(k) or 0 for k in keys)
        finally:
            client.close()
        return f"{len(keys):,} keys, {memory / 1e6:.1f} MB"
    db = sqlite3.connect(url)
    try:
        rows = db.execute("SELECT COUNT(*) FROM metric_buckets").fetchone()[0]
        buckets = db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT width, start FROM metric_buckets)"
        ).fetchone()[0]
    finally:
        db.close()
    return f"{buckets:,} buckets, {rows:,} rows"


async def bench_store(kind: str, url: str, n: int, repeat: int):
    clock = ManualClock(1_700_000_000.0)
    async with cp.scratch_store(url, clock) as store:
        write_s, flushes = await fill(store, clock, n)
        console.print(
            f"{kind}: {n:,} jobs recorded in {flushes:,} flushes, "
            f"{write_s * 1e6 / n:.1f} µs of store time per job"
        )
        ping: list[float] = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await store.ping()
            ping.append(time.perf_counter() - t0)
        rows = [(kind, "store.ping() (yardstick)", ping, None, len(ping))]
        for iv in series.INTERVALS.values():
            lat, total = await timed(store, iv, clock.now(), repeat)
            rows.append((kind, f"interval {iv.name} ({iv.points} points)", lat, total, 0))
        await store.metrics.expire(clock.now())
        return rows, held(url, store, clock.now()), write_s / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="100000", help="comma-separated job counts")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    rows, sizes = [], {}
    counts = [int(n) for n in args.jobs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            for kind in args.stores.split(","):
                url = cp.scratch_url(kind, Path(tmp), f"metrics-{n}")
                got, size, per_job = asyncio.run(bench_store(kind, url, n, args.repeat))
                rows += [(f"{kind}, {n:,} jobs", *row[1:]) for row in got]
                sizes[f"{kind}, {n:,} jobs"] = (size, per_job)
    env = Table(title="Environment", show_header=False)
    for k, v in cp.environment(
        [cp.STORE_REDIS] if "redis" in args.stores else [], "in-process store"
    ):
        env.add_row(k, v)
    console.print(env)
    table = Table(title="The metrics route's store cost, jobs spread over a week")
    for col in ("store", "read", "jobs in it", "p50 ms", "p99 ms", "p50 / ping"):
        table.add_column(col, justify="right" if col != "read" else "left")
    yard: dict[str, float] = {}
    for store, name, lat, total, is_yard in rows:
        p50 = percentile(lat, 50)
        if is_yard:
            yard[store] = p50
        table.add_row(
            store,
            name,
            "" if total is None else f"{total:,}",
            f"{p50 * 1000:.2f}",
            f"{percentile(lat, 99) * 1000:.2f}",
            f"{p50 / yard[store]:.0f}×",
        )
    console.print(table)
    for kind, (size, per_job) in sizes.items():
        console.print(f"{kind}: holds {size}; writes cost {per_job * 1e6:.1f} µs per job")


if __name__ == "__main__":
    main()
