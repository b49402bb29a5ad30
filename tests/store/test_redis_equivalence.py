"""The Redis store behaves exactly like the SQLite reference: random operation sequences
run against both, and every answer (jobs, errors, counts, workers, reaper reports) must match.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

import pytest

from podium.clock import ManualClock
from podium.errors import PodiumError
from podium.history import HistoryQuery
from podium.jobs import Job, JobStatus, Policy, Submission, WorkerReport
from podium.store.sqlite import SQLiteStore
from tests.conftest import REDIS_URL

redis_store = pytest.importorskip("podium.store.redis")

pytestmark = pytest.mark.redis

ENDPOINTS = ("ep1", "ep2")
WORKERS = ("w1", "w2", "w3")


def _norm(value: Any) -> Any:
    """Make answers comparable: reaper lists are sets (their order is not contractual)."""
    if hasattr(value, "finished"):  # ExpireReport
        return (
            sorted(value.finished, key=lambda j: j.id),
            sorted(value.requeued, key=lambda j: j.id),
            value.purged,
        )
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, Job):
        return astuple(value)
    return value


async def _both(stores: list[Any], method: str, *args: Any) -> Any:
    answers = []
    for store in stores:
        try:
            answers.append(_norm(await getattr(store, method)(*args)))
        except PodiumError as exc:
            answers.append(type(exc).__name__)
    assert answers[0] == answers[1], f"{method}{args}"
    return answers[0]


REPORTS = [
    WorkerReport("final", JobStatus.COMPLETED, output_json='{"ok":1}'),
    WorkerReport("final", JobStatus.COMPLETED, output_json="[]"),  # generator: the stream
    WorkerReport("final", JobStatus.COMPLETED, output_json=None),
    WorkerReport("final", JobStatus.FAILED, output_json=None, error="boom"),
]
OPS = (
    ["submit"] * 4
    + ["take"] * 3
    + ["finish"] * 3
    + ["progress", "append_stream", "read_stream", "cancel", "retry", "get", "heartbeat"]
    + ["jobs_to_stop", "expire", "expire", "purge_queue", "set_retention", "counts"]
    + ["workers", "history", "history"]
)


def _history_query(rng: random.Random, clock: ManualClock, ids: list[str]) -> HistoryQuery:
    after = None
    if ids and rng.random() < 0.5:  # a cursor at a random job (existing or not)
        after = (clock.now() - rng.choice([0.0, 2.0, 11.0]), rng.choice(ids))
    return HistoryQuery(
        status=rng.choice([None, None, *JobStatus]),
        since=rng.choice([None, clock.now() - 20]),
        until=rng.choice([None, clock.now() - 2]),
        after=after,
        limit=rng.choice([1, 3, 50]),
    )


async def _step(rng: random.Random, stores: list[Any], clock: ManualClock, ids: list[str]) -> None:
    """One random operation on both stores."""
    ep, worker, op = rng.choice(ENDPOINTS), rng.choice(WORKERS), rng.choice(OPS)
    job_id = "missing"
    if ids and rng.random() > 0.05:
        job_id = rng.choice(ids[-6:] if rng.random() < 0.8 else ids)  # mostly recent jobs
    holder = await stores[0].get(job_id)
    if holder and holder.worker_id and rng.random() < 0.7:
        worker = holder.worker_id  # mostly the worker that holds the job
    if op == "submit":
        policy = Policy(
            rng.choice([5_000, 20_000]), rng.choice([10_000, 60_000]), rng.random() < 0.3
        )
        sub = Submission(input_json=f'{{"i":{len(ids)}}}', policy=policy)
        job = Job.new(ep, sub, clock.now(), retention_ms=rng.choice([5_000, 30_000]))
        ids.append(job.id)
        await _both(stores, "submit", job, rng.choice([0, 1, 2]))
        return
    if op == "expire":
        clock.advance(rng.choice([0.5, 2.0, 4.0, 11.0]))
    args: dict[str, Callable[[], tuple[Any, ...]]] = {
        "take": lambda: (ep, worker, rng.randint(1, 3), 0, rng.choice([3.0, 30.0])),
        "finish": lambda: (job_id, worker, rng.choice(REPORTS)),
        "progress": lambda: (job_id, worker, f'{{"step":{rng.randint(0, 9)}}}'),
        "append_stream": lambda: (
            job_id,
            worker,
            [str(rng.randint(0, 9)), '"x"'],
            rng.choice([8, 64]),  # a small limit: some appends end the job FAILED
        ),
        "heartbeat": lambda: (
            ep,
            worker,
            rng.sample(ids, min(len(ids), 3)),
            3.0,
            rng.choice([None, "running"]),
            {"gpu": 0},
        ),
        "jobs_to_stop": lambda: (ep, worker),
        "expire": lambda: (clock.now(), rng.choice([0, 8_000, 60_000])),
        "purge_queue": lambda: (ep,),
        "set_retention": lambda: (job_id, rng.choice([1_000, 50_000])),
        "history": lambda: (ep, _history_query(rng, clock, ids)),
        "counts": lambda: (ep,),
        "workers": lambda: (ep, clock.now() - 5),
    }
    await _both(stores, op, *args.get(op, lambda: (job_id,))())


@pytest.mark.parametrize("seed", range(6))
async def test_random_operations_match_sqlite(seed, tmp_path):
    clock = ManualClock()
    sqlite = SQLiteStore(tmp_path / "ref.db", clock)
    redis = redis_store.RedisStore(f"{REDIS_URL}?prefix=t{uuid.uuid4().hex[:8]}", clock)
    stores = [sqlite, redis]
    rng = random.Random(seed)
    ids: list[str] = []
    try:
        for _ in range(400):
            await _step(rng, stores, clock, ids)
        for job_id in ids:
            await _both(stores, "get", job_id)
        for ep in ENDPOINTS:
            await _both(stores, "counts", ep)
    finally:
        keys = [k async for k in redis._redis.scan_iter(match=redis.prefix + ":*", count=1000)]
        if keys:
            await redis._redis.delete(*keys)
        await redis.close()
        await sqlite.close()
