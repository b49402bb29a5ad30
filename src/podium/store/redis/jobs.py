"""The queue and the jobs on Redis (store.base.JobQueue and JobHistory): every
transition one script (lua/), waiting on the pub/sub events with a fallback poll."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from redis.exceptions import (
    RedisError,
)

from podium.errors import Conflict
from podium.history import HISTORY_ERROR_BYTES, HistoryPage, HistoryQuery
from podium.jobs import (
    DEFAULT_LIMITS,
    MS,
    Job,
    JobStatus,
    WorkerReport,
)
from podium.store.base import (
    REAPER_QUARANTINE_ERROR,
    Appended,
    ExpireReport,
    FinishResult,
    StoreCounts,
    stream_limit_error,
)
from podium.store.redis.db import Connected, guarded
from podium.store.redis.records import (
    BATCH,
    HISTORY_EXAMINE_MAX,
    SUBMIT_BATCH,
    _decoded,
    _history_job,
    _job,
    _num,
    _opt,
)

__all__ = ["RedisJobs"]

log = logging.getLogger("podium.store.redis")


class RedisJobs(Connected):
    _submits: list[tuple[list[str], asyncio.Future[str]]]  # for the next call (store.py)
    _submit_tasks: set[asyncio.Task[None]]

    # --- client side -------------------------------------------------------------------

    async def submit(self, job: Job, retry_limit: int) -> None:
        """Queue a job. Submissions arriving in the same event-loop turn go to Redis in one
        script call (their order kept): under load, one round trip and one script run for
        many `/run`s instead of one each (docs/benchmarks.md, "Redis submissions")."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._submits.append((self._submit_args(job, retry_limit), done))
        if len(self._submits) == 1:
            asyncio.get_running_loop().call_soon(self._flush_submits)
        if await done == "exists":
            raise Conflict(f"Job {job.id} already exists; submit it with a new id.")

    def _flush_submits(self) -> None:
        batch, self._submits = self._submits[:SUBMIT_BATCH], self._submits[SUBMIT_BATCH:]
        if self._submits:
            asyncio.get_running_loop().call_soon(self._flush_submits)
        task = asyncio.ensure_future(self._submit_batch(batch))
        self._submit_tasks.add(task)
        task.add_done_callback(self._submit_tasks.discard)

    async def _submit_batch(self, batch: list[tuple[list[str], asyncio.Future[str]]]) -> None:
        args = [a for item, _ in batch for a in item]
        try:
            try:
                res = await self._run("submit", *args)
            except RedisError as exc:
                raise self._unavailable(exc) from exc
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        except BaseException:  # cancelled: the store is closing
            for _, done in batch:
                done.cancel()
            raise
        for (_, done), answer in zip(batch, res, strict=True):
            if not done.done():
                done.set_result(answer)

    @staticmethod
    def _submit_args(job: Job, retry_limit: int) -> list[str]:
        queued_at = _num(job.created_at)
        ttl_deadline = _num(job.created_at + job.ttl_ms / MS)
        low = "1" if job.low_priority else "0"
        fields = {
            "id": job.id,
            "ep": job.endpoint_id,
            "input": job.input_json,
            "webhook": job.webhook,
            "exec_ms": str(job.execution_timeout_ms),
            "ttl_ms": str(job.ttl_ms),
            "low": low,
            "retention_ms": str(job.retention_ms),
            "retry_limit": str(retry_limit),
            "created_at": queued_at,
            "queued_at": queued_at,
            "ttl_deadline": ttl_deadline,
            "s3_config": job.s3_config_json,
        }
        pairs = [x for k, v in fields.items() if v is not None for x in (k, v)]
        head = [job.id, job.endpoint_id, low, queued_at, ttl_deadline]
        return [*head, str(len(pairs)), *pairs]

    @guarded
    async def get(self, job_id: str) -> Job | None:
        # decode_responses=True: fields and values are str
        h = cast(dict[str, str], await self._redis.hgetall(self._k("job", job_id)))
        return _job(h) if h else None

    @guarded
    async def cancel(self, job_id: str) -> Job:
        res = await self._run("cancel", job_id)
        self._check(res, job_id)
        return _job(res[1])

    @guarded
    async def retry(self, job_id: str) -> Job:
        res = await self._run("retry", job_id)
        self._check(res, job_id)  # NotFound
        if res[0] == "conflict":
            raise Conflict(
                f"Job {job_id} is {res[1]}; only FAILED or TIMED_OUT jobs can be retried."
            )
        return _job(res[1])

    @guarded
    async def purge_queue(self, endpoint_id: str) -> int:
        total = 0
        while True:
            removed: int
            scanned: int
            removed, scanned = await self._run("purge_queue", endpoint_id, str(BATCH))
            total += removed
            if scanned < BATCH:
                return total

    @guarded
    async def set_retention(self, job_id: str, retention_ms: int) -> None:
        await self._run("set_retention", job_id, str(int(retention_ms)))

    @guarded
    async def wait_for_change(
        self, job_id: str, seen: Job, timeout: float, final_only: bool = False
    ) -> Job | None:
        deadline = time.monotonic() + timeout
        key = "j:" + job_id
        if timeout > 0:
            await self._events.ensure_listening()
        with self._events.watch(key) as generation:
            while True:
                before = generation()
                job = await self.get(job_id)
                if job is None:
                    return None
                if job.final or (not final_only and job.status is not seen.status):
                    return job
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return job
                if generation() == before:
                    await self._events.wait(key, min(remaining, self._poll_s))

    @guarded
    async def read_stream(
        self, job_id: str, wait: float = 0.0, seen: JobStatus | None = None
    ) -> tuple[Job | None, list[str]]:
        if wait <= 0:
            return await self._read_stream_now(job_id)
        deadline = time.monotonic() + wait
        key = "j:" + job_id
        first = seen  # the status the caller knows (None: the one the wait begins with)
        await self._events.ensure_listening()
        with self._events.watch(key) as generation:
            while True:
                before = generation()
                job, chunks = await self._read_stream_now(job_id)
                remaining = deadline - time.monotonic()
                if first is None and job is not None:
                    first = job.status
                if chunks or job is None or job.final or job.status is not first or remaining <= 0:
                    return job, chunks
                if generation() == before:
                    await self._events.wait(key, min(remaining, self._poll_s))

    async def _read_stream_now(self, job_id: str) -> tuple[Job | None, list[str]]:
        res = await self._run("read_stream", job_id)
        if res[0] == "notfound":
            return None, []
        return _job(res[1]), list(res[2])

    @guarded
    async def counts(self, endpoint_id: str) -> StoreCounts:
        [n] = await self._run("counts", endpoint_id)
        *numbers, oldest = n
        # The script's reply order, named: see its comment.
        names = ("in_queue", "in_progress", "completed", "failed", "cancelled", "timed_out")
        fields = dict(zip((*names, "retried", "in_queue_low"), map(int, numbers), strict=True))
        return StoreCounts(**fields, oldest_queued_at=float(oldest) if oldest else None)

    # --- worker side -------------------------------------------------------------------

    async def _take_now(
        self, endpoint_id: str, worker_id: str, n: int, lease_s: float
    ) -> list[Job]:
        lease_until = _num(self.clock.now() + lease_s)
        [taken] = await self._run("take", endpoint_id, worker_id, str(int(n)), lease_until)
        return [_job(flat) for flat in taken]

    @guarded
    async def take(
        self, endpoint_id: str, worker_id: str, n: int, hold: float, lease_s: float
    ) -> list[Job]:
        if hold <= 0:
            return await self._take_now(endpoint_id, worker_id, n, lease_s)
        deadline = time.monotonic() + hold
        key = "q:" + endpoint_id
        await self._events.ensure_listening()
        with self._events.watch(key) as generation:
            while True:
                before = generation()
                jobs = await self._take_now(endpoint_id, worker_id, n, lease_s)
                remaining = deadline - time.monotonic()
                if jobs or remaining <= 0:
                    return jobs
                if generation() == before:
                    await self._events.wait(key, min(remaining, self._poll_s))

    @guarded
    async def finish(self, job_id: str, worker_id: str, report: WorkerReport) -> FinishResult:
        if report.status is None:
            raise ValueError("finish() needs a final report (COMPLETED or FAILED)")
        res = await self._run(
            "finish",
            job_id,
            worker_id,
            report.status.value,
            *_opt(report.output_json),
            *_opt(report.error),
            "1" if report.streamed else "0",  # a generator's chunks are the output
        )
        self._check(res, job_id, worker_id)
        return FinishResult(_job(res[1]), applied=res[0] == "ok")

    @guarded
    async def progress(self, job_id: str, worker_id: str, output_json: str | None) -> Job:
        res = await self._run("progress", job_id, worker_id, *_opt(output_json))
        self._check(res, job_id, worker_id)
        return _job(res[1])

    @guarded
    async def append_stream(
        self, job_id: str, worker_id: str, chunks: list[str], limit_bytes: int
    ) -> Appended:
        size = sum(len(c.encode()) for c in chunks)
        res = await self._run(
            "append_stream",
            job_id,
            worker_id,
            str(int(limit_bytes)),
            str(size),
            stream_limit_error(limit_bytes),
            *chunks,
        )
        self._check(res, job_id, worker_id)
        over = res[0] == "over"
        return Appended(_job(res[1]), over_limit=over, applied=over)

    @guarded
    async def jobs_to_stop(self, endpoint_id: str, worker_id: str, hold: float = 0.0) -> list[str]:
        deadline = time.monotonic() + hold
        key = f"s:{endpoint_id}:{worker_id}"
        if hold > 0:
            await self._events.ensure_listening()
        with self._events.watch(key) as generation:
            while True:
                before = generation()
                [ids] = await self._run("jobs_to_stop", endpoint_id, worker_id)
                remaining = deadline - time.monotonic()
                if ids or remaining <= 0:
                    return list(ids)
                if generation() == before:
                    await self._events.wait(key, min(remaining, self._poll_s))

    # --- reaper ------------------------------------------------------------------------

    @guarded
    async def expire(self, now: float, history_ms: int = DEFAULT_LIMITS.history_ms) -> ExpireReport:
        report = ExpireReport()
        before, after = REAPER_QUARANTINE_ERROR.split("{cause}")
        while True:
            state, finished, requeued, purged, quarantined = await self._run(
                "expire",
                str(BATCH),
                before,
                after,
                str(int(history_ms)),
                str(HISTORY_ERROR_BYTES),
                now=now,
            )
            for flat in finished:
                job = _decoded(flat)
                if job is not None:
                    report.finished.append(job)
            for flat in requeued:
                job = _decoded(flat)
                if job is not None:
                    report.requeued.append(job)
            report.purged += purged
            report.quarantined += list(quarantined)
            if state == "done":
                return report

    # --- history -----------------------------------------------------------------------

    @guarded
    async def history(self, endpoint_id: str, query: HistoryQuery) -> HistoryPage:
        upper = query.upper()
        rows, last_score, last_id = await self._run(
            "history",
            endpoint_id,
            "" if query.status is None else query.status.value,
            "+inf" if upper is None else _num(upper[0]),
            "" if upper is None or upper[1] is None else upper[1],
            "-inf" if query.since is None else _num(query.since),
            str(int(query.limit)),
            str(HISTORY_ERROR_BYTES),
            str(HISTORY_EXAMINE_MAX),
        )
        jobs = [_history_job(endpoint_id, row) for row in rows]
        if len(jobs) > query.limit:
            jobs = jobs[: query.limit]
            return HistoryPage(jobs, (jobs[-1].created_at, jobs[-1].id))
        # The walk stopped at its bound (stale entries): the next page goes on from there.
        return HistoryPage(jobs, (float(last_score), last_id) if last_id else None)
