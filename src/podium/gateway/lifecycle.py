"""A job's lifecycle as the gateway drives it: the one home of "store call -> announce the
final state -> metrics", which the client, worker and OpenAI routes and the reaper share.

    submit          the job is stored (queued), then counted as submitted
    take            jobs handed to a worker are counted as started (their delay)
    finish          a worker's result; when it applied, the job is announced
    append_stream   a chunk that took the stream past its limit ended the job: announced
    cancel          a job that was not final and is now: announced
    retry           a failed or timed-out job back in the queue: counted as retried
    expire          the reaper's pass: every job it ended is announced, every job it
                    requeued (its worker was lost) counted as retried

Announcing a final job counts it (status, execution time) and fires its webhook (signed
with its endpoint's secret). Each method is one store call: atomic and guarded there.
"""

from __future__ import annotations

from podium.clock import Clock
from podium.gateway.lookups import Lookups
from podium.gateway.metrics import Metrics
from podium.gateway.webhooks import WebhookSender
from podium.jobs import Job, WorkerReport, status_object
from podium.store import JobStore
from podium.store.base import Appended, ExpireReport, FinishResult

__all__ = ["JobLifecycle"]


class JobLifecycle:
    def __init__(
        self,
        store: JobStore,
        metrics: Metrics,
        webhooks: WebhookSender,
        lookups: Lookups,
        clock: Clock,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.webhooks = webhooks
        self.lookups = lookups
        self.clock = clock

    async def submit(self, job: Job, retry_limit: int) -> None:
        await self.store.submit(job, retry_limit)
        self.metrics.submit(job)

    async def take(
        self, endpoint_id: str, worker_id: str, n: int, hold: float, lease_s: float
    ) -> list[Job]:
        jobs = await self.store.take(endpoint_id, worker_id, n, hold=hold, lease_s=lease_s)
        for job in jobs:
            self.metrics.started(job)
        return jobs

    async def finish(self, job_id: str, worker_id: str, report: WorkerReport) -> FinishResult:
        result = await self.store.finish(job_id, worker_id, report)
        if result.applied:
            await self._announce(result.job)
        return result

    async def append_stream(
        self, job_id: str, worker_id: str, chunks: list[str], limit_bytes: int
    ) -> Appended:
        appended = await self.store.append_stream(job_id, worker_id, chunks, limit_bytes)
        if appended.over_limit and appended.applied:
            await self._announce(appended.job)
        return appended

    async def cancel(self, before: Job) -> Job:
        """Cancel `before` (the job as the caller read it)."""
        job = await self.store.cancel(before.id)
        if not before.final and job.final:
            await self._announce(job)
        return job

    async def retry(self, job_id: str) -> Job:
        job = await self.store.retry(job_id)
        self.metrics.retried(job)
        return job

    async def expire(self, now: float, history_ms: int) -> ExpireReport:
        report = await self.store.expire(now, history_ms)
        for job in report.finished:
            await self._announce(job)
        for job in report.requeued:
            self.metrics.retried(job)
        return report

    async def _announce(self, job: Job) -> None:
        """A job reached a final status: count it and fire its webhook."""
        self.metrics.ended(job)
        if job.webhook:
            endpoint = await self.lookups.endpoint(job.endpoint_id)
            if endpoint is not None:
                self.webhooks.send(
                    job.webhook,
                    status_object(job, self.clock.now()),
                    endpoint.webhook_secret,
                    endpoint_id=job.endpoint_id,
                )
