"""Job history with 100,000 jobs: how long one page of `GET /v2/{ep}/requests` costs the store.

    .venv/bin/python bench/job_history.py              # 100,000 jobs, SQLite and Redis
    .venv/bin/python bench/job_history.py --jobs 10000 # smaller, for a smoke run

For each store (a SQLite file; Redis at 127.0.0.1:6379 db 14 under a fresh key prefix,
deleted afterwards) the script fills one endpoint with `--jobs` jobs through the store's
own API, one every 10 ms of a manual clock: 60 % completed, 5 % failed, 5 % running, the
rest queued; then a reaper pass deletes the data of the older half of the finished ones,
so the history holds retained jobs and purged jobs' records side by side. It then times
`store.history()` (the route's whole store cost) for the first page, a page deep in the
list (by cursor), a status filter that matches few jobs (FAILED), and a one-minute time
window, each `--repeat` times, and prints p50 / p99 per query and store.
Every loop is bounded in count; every target is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import control_plane as cp
from _load import percentile
from podium import codec
from podium.clock import ManualClock
from podium.history import HistoryQuery
from podium.jobs import Job, JobStatus, Policy, Submission, WorkerReport
from podium.store import JobStore

console = Console() if sys.stdout.isatty() else Console(width=130)
EP = "bench-history"
START = 1_700_000_000.0
STEP_S = 0.01  # one job every 10 ms of the manual clock


async def fill(store: JobStore, clock: ManualClock, n: int) -> float:
    """Submit n jobs and move them to their statuses; seconds it took."""
    began = time.perf_counter()
    ids: list[str] = []
    policy = Policy(600_000, 7 * 86_400_000)
    for chunk in range(0, n, 1000):
        batch = []
        for _ in range(chunk, min(n, chunk + 1000)):
            job = Job.new(EP, Submission('{"prompt":"x"}', policy), clock.now(), 3_600_000)
            clock.advance(STEP_S)
            batch.append(job)
            ids.append(job.id)
        await asyncio.gather(*(store.submit(j, 2) for j in batch))
    # Take 70 % in submission order; finish 60 % COMPLETED, 5 % FAILED, 5 % left running.
    taken = 0
    while taken < int(n * 0.7):
        jobs = await store.take(EP, "w1", min(500, int(n * 0.7) - taken), 0, 3600)
        taken += len(jobs)
    done = WorkerReport("final", JobStatus.COMPLETED, output_json=codec.dumps_text({"ok": 1}))
    failed = WorkerReport("final", JobStatus.FAILED, error="CUDA out of memory " * 20)
    finishing = ids[: int(n * 0.65)]
    for at in range(0, len(finishing), 200):
        await asyncio.gather(
            *(
                store.finish(job_id, "w1", failed if (at + i) % 13 == 0 else done)
                for i, job_id in enumerate(finishing[at : at + 200])
            )
        )
    # The older half of the finished jobs: retention ran out, only the record remains.
    purging = ids[: int(n * 0.3)]
    for at in range(0, len(purging), 200):
        await asyncio.gather(*(store.set_retention(j, 0) for j in purging[at : at + 200]))
    await store.expire(clock.now(), history_ms=86_400_000)
    return time.perf_counter() - began


async def timed(store: JobStore, query: HistoryQuery, repeat: int) -> tuple[list[float], int]:
    lat: list[float] = []
    found = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = await store.history(EP, query)
        lat.append(time.perf_counter() - t0)
        found = len(page.jobs)
    return lat, found


async def bench_store(
    kind: str, url: str, n: int, repeat: int
) -> list[tuple[str, str, list[float], int]]:
    clock = ManualClock(START)
    async with cp.scratch_store(url, clock) as store:
        fill_s = await fill(store, clock, n)
        console.print(f"{kind}: {n:,} jobs ready in {fill_s:.1f} s")
        after = None
        for _ in range(200):  # walk 200 pages of 20 to reach deep into the list
            page = await store.history(EP, HistoryQuery(limit=20, after=after))
            after = page.next
        middle = START + n * STEP_S / 2
        queries = [
            ("first page (20)", HistoryQuery(limit=20)),
            ("page 201 by cursor", HistoryQuery(limit=20, after=after)),
            ("first page of 100", HistoryQuery(limit=100)),
            ("status=FAILED (5 %)", HistoryQuery(status=JobStatus.FAILED, limit=20)),
            ("status=IN_PROGRESS", HistoryQuery(status=JobStatus.IN_PROGRESS, limit=20)),
            ("1-minute window", HistoryQuery(since=middle, until=middle + 60, limit=20)),
        ]
        rows = []
        for name, query in queries:
            lat, found = await timed(store, query, repeat)
            rows.append((kind, name, lat, found))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            url = cp.scratch_url(kind, Path(tmp), "history")
            rows += asyncio.run(bench_store(kind, url, args.jobs, args.repeat))
    env = Table(title="Environment", show_header=False)
    for k, v in cp.environment(
        [cp.STORE_REDIS] if "redis" in args.stores else [], "in-process store"
    ):
        env.add_row(k, v)
    console.print(env)
    table = Table(title=f"store.history() with {args.jobs:,} jobs on one endpoint")
    for col in ("store", "query", "entries", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col != "query" else "left")
    for store, name, lat, found in rows:
        table.add_row(
            store,
            name,
            str(found),
            f"{percentile(lat, 50) * 1000:.2f}",
            f"{percentile(lat, 99) * 1000:.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
