"""Prometheus metrics: counters and histograms fed by the routes, gauges read at scrape;
and the same events into the endpoints' metrics over time (`series`, a podium.series
Recorder that gateway/series.py writes to the store)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from podium.board import FleetBoard, FleetReport, SnapshotSummary, WorkerStatus
from podium.clock import Clock, SystemClock
from podium.jobs import Job
from podium.series import Recorder
from podium.store import JobStore

__all__ = ["MeteredFleetBoard", "Metrics"]

# Job delay and execution: about 1.5x apart from 1 ms to an hour, so that the percentiles
# RunPod's console shows (P70, P90, P98) come out of /metrics within one bucket:
#   histogram_quantile(0.9, sum by (le, endpoint) (rate(podium_job_delay_seconds_bucket[5m])))
# Histograms (unlike summaries) add up across gateways.
_BUCKETS = (
    0.001, 0.0015, 0.0022, 0.0033, 0.005, 0.0075, 0.011, 0.017, 0.025, 0.038, 0.057,
    0.085, 0.13, 0.19, 0.29, 0.43, 0.65, 0.97, 1.5, 2.2, 3.3, 4.9, 7.4, 11, 17, 25, 37,
    56, 84, 130, 190, 280, 430, 640, 960, 1400, 2200, 3300,
)  # fmt: skip
# Cold starts: from a worker's start to its first contact with the gateway.
_COLD_BUCKETS = tuple(b for b in _BUCKETS if b >= 0.19)
# Restores from a snapshot: tens of milliseconds to seconds (histogram_quantile gives P50/P90).
_RESTORE_BUCKETS = tuple(b for b in _BUCKETS if 0.01 <= b <= 130)
WEBHOOK_OUTCOMES = ("delivered", "failed", "refused")


class Metrics:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.series = Recorder()
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
        # load-balancing endpoints (gateway/lb_proxy.py)
        self.lb_requests = Counter(
            "podium_lb_requests",
            "Requests proxied to load-balancing workers, by the status answered",
            ["endpoint", "code"],
            registry=r,
        )
        self.lb_latency = Histogram(
            "podium_lb_response_seconds",
            "Time from a load-balancing request to the start of its answer (waiting included)",
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
        self.cold_starts = Counter(
            "podium_cold_starts",
            "Workers the fleet started that became ready (each start of a worker counts), "
            "by how: `started` (the program ran) or `restored` (from a snapshot)",
            ["endpoint", "kind"],
            registry=r,
        )
        self.cold_start = Histogram(
            "podium_cold_start_seconds",
            "Time from a worker's start to it being ready (its first contact), by how",
            ["endpoint", "kind"],
            buckets=_COLD_BUCKETS,
            registry=r,
        )
        self.restore = Histogram(
            "podium_snapshot_restore_seconds",
            "How long restoring a worker from its snapshot took (criu restore)",
            ["endpoint"],
            buckets=_RESTORE_BUCKETS,
            registry=r,
        )
        self.snapshot_events = Gauge(
            "podium_snapshot_events",
            "Snapshot events since the fleet started: taken, take_failed, restored, "
            "restore_failed (each failed restore was followed by a normal start)",
            ["endpoint", "event"],
            registry=r,
        )
        self.snapshot_bytes = Gauge(
            "podium_snapshot_bytes",
            "Disk the endpoint's snapshot images use",
            ["endpoint"],
            registry=r,
        )
        self.webhooks = Counter(
            "podium_webhook_deliveries",
            "Webhook deliveries by outcome: delivered (2xx), failed (every attempt failed), "
            "refused (a private or loopback address)",
            ["endpoint", "outcome"],
            registry=r,
        )
        self._cold_seen: set[tuple[str, float]] = set()  # (worker, started_at) counted

    def lb_request(self, endpoint_id: str, status: int, seconds: float) -> None:
        """A request proxied to a load-balancing worker was answered. In the series it is
        a request (completed below 500, failed from 500 on, as a job would be) whose
        execution time is the time to its answer's start."""
        self.lb_requests.labels(endpoint_id, str(status)).inc()
        self.lb_latency.labels(endpoint_id).observe(seconds)
        now = self.clock.now()
        self.series.submitted(endpoint_id, now)
        self.series.ended(endpoint_id, now, "COMPLETED" if status < 500 else "FAILED")
        self.series.observe(endpoint_id, now, "e", seconds)

    def submit(self, job: Job) -> None:
        self.submitted.labels(job.endpoint_id).inc()
        self.series.submitted(job.endpoint_id, job.created_at)

    def started(self, job: Job) -> None:
        if job.started_at is not None:
            delay = max(0.0, job.started_at - job.created_at)
            self.delay.labels(job.endpoint_id).observe(delay)
            self.series.observe(job.endpoint_id, job.started_at, "d", delay)

    def ended(self, job: Job) -> None:
        self.finished.labels(job.endpoint_id, job.status.value).inc()
        at = job.finished_at if job.finished_at is not None else self.clock.now()
        self.series.ended(job.endpoint_id, at, job.status.value)
        if job.started_at is not None and job.finished_at is not None:
            execution = max(0.0, job.finished_at - job.started_at)
            self.execution.labels(job.endpoint_id).observe(execution)
            self.series.observe(job.endpoint_id, at, "e", execution)

    def retried(self, job: Job) -> None:
        """A job went back to the queue: a /retry, or its worker was lost."""
        self.series.retried(job.endpoint_id, self.clock.now())

    def webhook(self, endpoint_id: str, outcome: str) -> None:
        self.webhooks.labels(endpoint_id, outcome).inc()
        self.series.webhook(endpoint_id, self.clock.now(), outcome)

    def fleet_report(self, workers: Mapping[str, Iterable[WorkerStatus]]) -> None:
        """Count the cold starts a fleet report shows: workers that became ready since the
        last report (a restarted worker starts anew: it counts again; an adopted one,
        started before this controller took over, does not)."""
        current: set[tuple[str, float]] = set()
        for endpoint_id, statuses in workers.items():
            for w in statuses:
                if w.started_at is None or w.ready_at is None or w.adopted:
                    continue
                key = (w.id, w.started_at)
                current.add(key)
                if key not in self._cold_seen:
                    kind = "started" if w.restore_s is None else "restored"
                    self.cold_starts.labels(endpoint_id, kind).inc()
                    seconds = max(0.0, w.ready_at - w.started_at)
                    self.cold_start.labels(endpoint_id, kind).observe(seconds)
                    self.series.cold_start(endpoint_id, w.ready_at, seconds, kind == "restored")
                    if w.restore_s is not None:
                        self.restore.labels(endpoint_id).observe(w.restore_s)
        self._cold_seen = current

    def snapshots(self, summaries: Mapping[str, SnapshotSummary]) -> None:
        for endpoint_id, s in summaries.items():
            self.snapshot_bytes.labels(endpoint_id).set(s.bytes)
            for event, n in (("taken", s.dumped), ("restored", s.restored)):
                self.snapshot_events.labels(endpoint_id, event).set(n)
            self.snapshot_events.labels(endpoint_id, "restore_failed").set(s.failed)
            self.snapshot_events.labels(endpoint_id, "take_failed").set(s.dump_failed)

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
        return generate_latest(_Only(self.registry, visible))


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


@dataclass
class MeteredFleetBoard(FleetBoard):
    """The fleet's board (what supervisors publish), also feeding the cold-start metrics:
    the fleet publishes here as on any FleetBoard."""

    metrics: Metrics | None = field(default=None, repr=False)

    def publish(self, report: FleetReport, now: float) -> None:
        super().publish(report, now)
        if self.metrics is not None:
            self.metrics.fleet_report(report.workers)
            self.metrics.snapshots(report.snapshots)
