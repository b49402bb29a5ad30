"""Prometheus metrics: counters and histograms fed by the routes, gauges read at scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from podium.jobs import Job
from podium.store import JobStore

__all__ = ["Metrics"]

_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.submitted = Counter(
            "podium_jobs_submitted",
            "Jobs accepted by /run and /runsync",
            ["endpoint"],
            registry=r,
        )
        self.finished = Counter(
            "podium_jobs_finished",
            "Jobs that reached a final status",
            ["endpoint", "status"],
            registry=r,
        )
        self.delay = Histogram(
            "podium_job_delay_seconds",
            "Time from submit to start",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.execution = Histogram(
            "podium_job_execution_seconds",
            "Time from start to a worker's result",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge(
            "podium_jobs", "Retained jobs by status", ["endpoint", "status"], registry=r
        )
        self.queue_depth = Gauge(
            "podium_queue_depth", "Jobs waiting in the queue", ["endpoint"], registry=r
        )
        self.workers = Gauge(
            "podium_workers",
            "Workers seen recently, by state",
            ["endpoint", "state"],
            registry=r,
        )

    def started(self, job: Job) -> None:
        if job.started_at is not None:
            self.delay.labels(job.endpoint_id).observe(max(0.0, job.started_at - job.created_at))

    def ended(self, job: Job) -> None:
        self.finished.labels(job.endpoint_id, job.status.value).inc()
        if job.started_at is not None and job.finished_at is not None:
            self.execution.labels(job.endpoint_id).observe(
                max(0.0, job.finished_at - job.started_at)
            )

    async def render(
        self, store: JobStore, alive_since: float, visible: set[str] | None = None
    ) -> bytes:
        """The exposition; with `visible`, only the samples of those endpoints (a key
        limited to some endpoints sees nothing of the others)."""
        for endpoint in await store.list_endpoints():
            if visible is not None and endpoint.id not in visible:
                continue
            c = await store.counts(endpoint.id)
            self.queue_depth.labels(endpoint.id).set(c.in_queue)
            for status in (
                "in_queue",
                "in_progress",
                "completed",
                "failed",
                "cancelled",
                "timed_out",
            ):
                self.jobs.labels(endpoint.id, status.upper()).set(getattr(c, status))
            states: dict[str, int] = {"idle": 0, "running": 0, "unhealthy": 0}
            for w in await store.workers(endpoint.id, alive_since):
                state = "unhealthy" if w.state == "unhealthy" else ("running" if w.jobs else "idle")
                states[state] += 1
            for state, n in states.items():
                self.workers.labels(endpoint.id, state).set(n)
        if visible is None:
            return generate_latest(self.registry)
        return generate_latest(_Only(self.registry, visible))  # type: ignore[arg-type]


class _Only:
    """A registry view with only the samples whose `endpoint` label is in `endpoints`."""

    def __init__(self, registry: CollectorRegistry, endpoints: set[str]) -> None:
        self._registry = registry
        self._endpoints = endpoints

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            kept = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            kept.samples = [
                s for s in metric.samples if s.labels.get("endpoint") in self._endpoints
            ]
            yield kept
