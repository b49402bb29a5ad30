"""The job state machine of jobs.py is the stores' state machine, on every backend.

Every store operation is applied to a job in every status; each status change observed
must be one `jobs.can_transition` allows, an operation that changes nothing must leave
the job as it was, and every transition the table allows must be reachable by some
operation (so the table is neither looser nor stricter than the SQL and Lua guards).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from podium import codec
from podium.errors import Conflict
from podium.jobs import Job, JobStatus, Policy, Submission, WorkerReport, can_transition

EP = "ep1"
WORKER = "w1"
LEASE_S = 30.0
RETRY_LIMIT = 1


@dataclass(frozen=True)
class Timing:
    """A job's policy for one operation, so the reaper step under test fires first."""

    ttl_ms: int = 86_400_000
    exec_ms: int = 600_000


async def _submit(store, clock, timing: Timing) -> Job:
    sub = Submission(input_json='{"n":1}', policy=Policy(timing.exec_ms, timing.ttl_ms, False))
    job = Job.new(EP, sub, clock.now(), retention_ms=600_000)
    await store.submit(job, retry_limit=RETRY_LIMIT)
    return job


async def _take(store, job: Job) -> None:
    [taken] = await store.take(EP, WORKER, 1, hold=0, lease_s=LEASE_S)
    assert taken.id == job.id


def _report(status: JobStatus, **kw) -> WorkerReport:
    return WorkerReport(kind="final", status=status, **kw)


async def _in_status(store, clock, status: JobStatus, timing: Timing) -> Job:
    """A fresh job of this endpoint's (otherwise empty) queue, brought to `status`
    (TIMED_OUT: see _bring)."""
    job = await _submit(store, clock, timing)
    if status is JobStatus.IN_QUEUE:
        return job
    if status is JobStatus.CANCELLED:
        await store.cancel(job.id)
        return job
    await _take(store, job)
    if status is JobStatus.COMPLETED:
        await store.finish(job.id, WORKER, _report(status, output_json=codec.dumps_text(1)))
    elif status is JobStatus.FAILED:
        await store.finish(job.id, WORKER, _report(status, error="boom"))
    return job


Op = Callable[..., Awaitable[object]]


async def _op_take(store, clock, job):
    await store.take(EP, "w2", 1, hold=0, lease_s=LEASE_S)


async def _op_complete(store, clock, job):
    await store.finish(job.id, WORKER, _report(JobStatus.COMPLETED, output_json="2"))


async def _op_fail(store, clock, job):
    await store.finish(job.id, WORKER, _report(JobStatus.FAILED, error="bad"))


async def _op_cancel(store, clock, job):
    await store.cancel(job.id)


async def _op_retry(store, clock, job):
    await store.retry(job.id)


def _op_reap(seconds: float) -> Op:
    async def reap(store, clock, job):
        clock.advance(seconds)
        await store.expire(clock.now())

    return reap


async def _op_lease_lost_twice(store, clock, job):
    """The lease runs out, the job is taken again and its lease runs out past the limit."""
    clock.advance(LEASE_S + 1)
    await store.expire(clock.now())
    if (await store.get(job.id)).status is JobStatus.IN_QUEUE:
        await store.take(EP, WORKER, 1, hold=0, lease_s=LEASE_S)
        clock.advance(LEASE_S + 1)
        await store.expire(clock.now())


OPS: dict[str, tuple[Op, Timing]] = {
    "take": (_op_take, Timing()),
    "complete": (_op_complete, Timing()),
    "fail": (_op_fail, Timing()),
    "cancel": (_op_cancel, Timing()),
    "retry": (_op_retry, Timing()),
    "ttl runs out": (_op_reap(11), Timing(ttl_ms=10_000)),
    "executionTimeout runs out": (_op_reap(6), Timing(exec_ms=5_000)),
    "lease lost": (_op_reap(LEASE_S + 1), Timing()),
    "lease lost past the retry limit": (_op_lease_lost_twice, Timing()),
}


async def _bring(store, clock, status: JobStatus, timing: Timing) -> Job:
    if status is not JobStatus.TIMED_OUT:
        return await _in_status(store, clock, status, timing)
    job = await _submit(store, clock, Timing(ttl_ms=1_000, exec_ms=timing.exec_ms))
    clock.advance(2)
    await store.expire(clock.now())
    return job


async def _leave_nothing_queued(store, job_id: str) -> None:
    """Purge and cancel what is left, so the next operation's take finds an empty queue."""
    await store.purge_queue(EP)
    current = await store.get(job_id)
    if current is not None and current.status is JobStatus.IN_PROGRESS:
        await store.cancel(job_id)


async def test_every_status_change_is_one_the_state_machine_allows(store, clock):
    seen: set[tuple[JobStatus, JobStatus]] = set()
    for start in JobStatus:
        for name, (op, timing) in OPS.items():
            job = await _bring(store, clock, start, timing)
            before = await store.get(job.id)
            assert before is not None and before.status is start, (start, name)
            with contextlib.suppress(Conflict):  # refused: the job must be as it was
                await op(store, clock, job)
            after = await store.get(job.id)
            assert after is not None, (start, name)
            if after.status is not start:
                assert can_transition(start, after.status), (
                    f"{name} took a {start} job to {after.status}, which jobs.py forbids"
                )
                seen.add((start, after.status))
            else:
                assert after.worker_id == before.worker_id, (start, name)
            await _leave_nothing_queued(store, job.id)
    allowed = {(a, b) for a in JobStatus for b in JobStatus if can_transition(a, b)}
    assert seen == allowed, f"allowed but never reached: {sorted(allowed - seen)}"
