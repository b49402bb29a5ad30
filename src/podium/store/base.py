"""The store contract, by role. Every backend passes the one suite in tests/store/.

    JobQueue        the queue and the jobs: submit, take, finish, cancel, retry, stream,
                    the stop channel, and the reaper's `expire`
    JobHistory      the list of an endpoint's jobs (podium.history)
    WorkerRegistry  what the gateway saw of each worker: pings, polls, the jobs it holds
    Catalog         endpoints, API keys, templates and gateway-wide settings (records)
    Locks           a store lock with a lease: one holder drives a gateway-wide duty
    WorkerLogs      the workers' log lines (`store.logs`)
    EndpointMetrics an endpoint's metrics buckets over time (`store.metrics`, podium.series)
    JobStore        all of them on one backend (sqlite/, redis/: a module per role)

Every method that changes a job is one atomic, guarded transition inside the backend:
two gateways or a duplicate post can never move a job twice. Waiting (long-poll take,
runsync, status `wait`, the stop channel) is part of the contract. Time comes from the
injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.board import WorkerInfo
from podium.clock import Clock
from podium.endpoints import Endpoint
from podium.history import HistoryPage, HistoryQuery
from podium.jobs import DEFAULT_LIMITS, Job, JobStatus, WorkerReport
from podium.keys import ApiKey
from podium.logs.lines import LogBudget, LogLine, LogQuery, StoredLine
from podium.series import Delta

__all__ = [
    "REAPER_QUARANTINE_ERROR",
    "RECORD_KINDS",
    "Appended",
    "Catalog",
    "EndpointMetrics",
    "FinishResult",
    "JobHistory",
    "JobQueue",
    "JobStore",
    "Locks",
    "LogPage",
    "StoreCounts",
    "WorkerLogs",
    "WorkerRegistry",
    "open_store",
    "stream_limit_error",
]

# The error of a job the reaper could not process: it ends FAILED with this message
# (formatted with the cause) so that no single record can stop expiry for everyone.
REAPER_QUARANTINE_ERROR = (
    "The gateway could not process this job's record ({cause}); it was failed so that "
    "expiry goes on for every other job."
)


def stream_limit_error(limit_bytes: int) -> str:
    """The error of a job whose stream chunks passed `limit_bytes` in all."""
    return (
        f"The job's stream chunks passed the limit of {limit_bytes} bytes in all; the chunk "
        "that crossed it was refused and the job stopped."
    )


@dataclass(slots=True)
class FinishResult:
    job: Job
    applied: bool  # False: a duplicate or late post, nothing changed


@dataclass(slots=True)
class Appended:
    """What append_stream did. `over_limit`: the chunks would have taken the job's
    stream past its byte limit; they were refused and the job ended FAILED (`applied`:
    by this call, so the caller announces it)."""

    job: Job
    over_limit: bool = False
    applied: bool = False


@dataclass(slots=True)
class StoreCounts:
    in_queue: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    retried: int = 0
    in_queue_low: int = 0  # of in_queue, the lowPriority ones (they never cause scale-up)
    oldest_queued_at: float | None = None  # the oldest normal-priority queued job


@dataclass(slots=True)
class ExpireReport:
    """What one reaper pass changed: final jobs (for webhooks) and requeued ones."""

    finished: list[Job] = field(default_factory=list)
    requeued: list[Job] = field(default_factory=list)
    purged: int = 0
    quarantined: list[str] = field(default_factory=list)  # ids failed with the message above


class JobHistory(Protocol):
    """The list of an endpoint's jobs (podium.history), one role of a store.

    Every job is listed from submit on; when `expire` deletes a finished job's data it
    keeps the job's record (no input, output or stream; its error cut by
    history.cut_error) for `history_ms` more, then forgets it. A page costs a walk of an
    index ordered by (created_at, id), whatever the number of jobs."""

    async def history(self, endpoint_id: str, query: HistoryQuery) -> HistoryPage:
        """Up to `query.limit` jobs, newest first (created_at desc, id desc), with their
        errors cut; `next` is the last one's key when more follow."""
        ...


@dataclass(slots=True)
class LogPage:
    lines: list[StoredLine]  # oldest first
    cursor: int  # pass as `since` to read on: every line after the answer has a larger seq


class WorkerLogs(Protocol):
    """Worker log lines (podium.logs), one role of a store: `store.logs`.

    Every line gets a seq from one counter of the whole store, so a seq orders lines of
    all workers by the time the store took them (a worker's own lines stay in the order
    it wrote them) and serves as the cursor of `since`. What is kept follows a LogBudget
    (logs/lines.py); a worker that shipped nothing for the retention period is forgotten
    by `expire`; `JobStore.delete_endpoint` deletes its endpoint's lines."""

    async def append(
        self, endpoint_id: str, worker_id: str, lines: list[LogLine], budget: LogBudget
    ) -> int:
        """Store lines in order, then hold the worker and its endpoint to `budget` (the
        worker's last lines; the endpoint's least recently written logs go first); the
        seq of the last line (the counter's value when `lines` is empty)."""
        ...

    async def read(self, endpoint_id: str, query: LogQuery) -> LogPage:
        """The lines the query asks for, oldest first (see LogQuery)."""
        ...

    async def expire(self, before: float) -> int:
        """Forget the logs of workers that last shipped a line before `before` (store
        clock); how many workers were forgotten."""
        ...


class EndpointMetrics(Protocol):
    """An endpoint's metrics over time (podium.series), one role of a store:
    `store.metrics`. Buckets of every tier of series.TIERS, each dropped once its tier
    no longer keeps it; `JobStore.delete_endpoint` deletes its endpoint's buckets."""

    async def record(self, deltas: list[Delta]) -> None:
        """Add each delta to the bucket of every tier that holds its minute, all in one
        atomic step: counts added, samples keeping the larger (so writers merge)."""
        ...

    async def read(
        self, endpoint_id: str, width_s: int, start: int, end: int
    ) -> dict[int, dict[str, int]]:
        """The endpoint's buckets of the tier `width_s` that start in [start, end): bucket
        start -> fields (buckets with nothing are left out)."""
        ...

    async def expire(self, now: float) -> int:
        """Drop the buckets past what their tier keeps; how many rows or keys went."""
        ...


class JobQueue(Protocol):
    """The queue and the jobs: every transition atomic and guarded (docs/ARCHITECTURE.md)."""

    # client side
    async def submit(self, job: Job, retry_limit: int) -> None: ...
    async def get(self, job_id: str) -> Job | None: ...
    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a running one lands on its worker's stop list).
        A job already final is returned unchanged. NotFound for an unknown job."""
        ...

    async def retry(self, job_id: str) -> Job:
        """FAILED / TIMED_OUT -> IN_QUEUE with output and error cleared. Conflict otherwise."""
        ...

    async def purge_queue(self, endpoint_id: str) -> int: ...
    async def set_retention(self, job_id: str, retention_ms: int) -> None:
        """Keep the job's data `retention_ms` after it finishes (shorter or longer than
        before); a job already past it is purged by the next `expire`."""
        ...

    async def wait_for_change(
        self, job_id: str, seen: Job, timeout: float, final_only: bool = False
    ) -> Job | None:
        """Wait until the job's status differs from `seen.status` (or, with final_only,
        until it is final), at most `timeout` seconds. Returns the job as it is then
        (None when it is gone)."""
        ...

    async def read_stream(
        self, job_id: str, wait: float = 0.0, seen: JobStatus | None = None
    ) -> tuple[Job | None, list[str]]:
        """Chunks (JSON text) not yet delivered to a reader; each is delivered once. With
        `wait`, wait up to that many seconds for one, or for the job's status to differ
        from `seen` (default: its status when the wait begins) or be final: the job as it
        is then, and [] when no chunk came."""
        ...

    async def counts(self, endpoint_id: str) -> StoreCounts: ...

    # worker side
    async def take(
        self, endpoint_id: str, worker_id: str, n: int, hold: float, lease_s: float
    ) -> list[Job]:
        """Atomically move up to n queued jobs (FIFO within priority) to IN_PROGRESS for
        this worker; wait up to `hold` seconds for one to arrive. [] when none came."""
        ...

    async def finish(self, job_id: str, worker_id: str, report: WorkerReport) -> FinishResult:
        """Record a final result. NotFound: unknown job; Conflict: the worker does not
        hold it. A second post for a job already final is not applied (idempotent)."""
        ...

    async def progress(self, job_id: str, worker_id: str, output_json: str | None) -> Job: ...
    async def append_stream(
        self, job_id: str, worker_id: str, chunks: list[str], limit_bytes: int
    ) -> Appended:
        """Append chunks (JSON text) to a running job's stream. When they would take the
        stream's total past `limit_bytes`, none is appended and the job ends FAILED."""
        ...

    async def jobs_to_stop(self, endpoint_id: str, worker_id: str, hold: float = 0.0) -> list[str]:
        """The worker's jobs it must stop (cancelled or timed out), each handed out once;
        with `hold`, wait up to that many seconds for one (woken as a stop is posted)."""
        ...

    # reaper
    async def expire(self, now: float, history_ms: int = DEFAULT_LIMITS.history_ms) -> ExpireReport:
        """One pass: ttl, executionTimeout, lost leases, retention (a purged job's record
        stays in the history `history_ms` more), the history period. A record the pass
        cannot process ends FAILED (REAPER_QUARANTINE_ERROR) and the pass goes on."""
        ...


class WorkerRegistry(Protocol):
    """What the gateway saw of each worker (board.WorkerInfo), at most
    jobs.WORKER_RECORDS_PER_ENDPOINT per endpoint."""

    async def heartbeat(
        self,
        endpoint_id: str,
        worker_id: str,
        job_ids: list[str],
        lease_s: float,
        state: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        """The worker is alive: renew the leases of the listed jobs it holds, and put a
        job it still runs that was stopped back on its stop list."""
        ...

    async def workers(self, endpoint_id: str, alive_since: float) -> list[WorkerInfo]: ...


# The kinds of named records a Catalog keeps (store/records.py reads and writes them);
# `lbload`: what each gateway has in flight on load-balancing workers (records.LbLoads).
RECORD_KINDS = ("templates", "volumes", "registries", "lbload")


class Catalog(Protocol):
    """Records of the gateway: endpoints, API keys, named records (templates, network
    volumes, registries), and settings."""

    async def put_endpoint(self, endpoint: Endpoint) -> None: ...
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    async def list_endpoints(self) -> list[Endpoint]: ...
    async def endpoint_by_token_hash(self, token_hash: str) -> Endpoint | None: ...

    async def put_key(self, key: ApiKey) -> None: ...
    async def key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    async def list_keys(self) -> list[ApiKey]: ...

    # named records of RECORD_KINDS (templates, network volumes, registries): JSON docs
    async def put_record(self, kind: str, record_id: str, name: str, doc: str) -> bool:
        """Store (or replace) a record; False, storing nothing, when another record of
        the kind has its name (names are unique within a kind)."""
        ...

    async def get_record(self, kind: str, record_id: str) -> str | None: ...
    async def list_records(self, kind: str) -> list[str]:
        """The kind's records, in the order they were first stored."""
        ...

    async def delete_record(self, kind: str, record_id: str) -> bool: ...

    # gateway-wide settings (e.g. whether the admin key exists)
    async def get_setting(self, name: str) -> str | None: ...
    async def set_setting_if_absent(self, name: str, value: str) -> bool: ...


class Locks(Protocol):
    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        """Take the lock `name` for `owner`, or renew it if `owner` holds it, for
        `lease_s` seconds of the store's clock. False while another owner holds it.
        Leader election for gateway-wide duties (the reaper, a shared fleet)."""
        ...


class JobStore(JobQueue, JobHistory, WorkerRegistry, Catalog, Locks, Protocol):
    """Every role on one backend."""

    clock: Clock
    where: str  # where the data lives, for messages (no credentials)

    @property
    def logs(self) -> WorkerLogs:
        """The workers' log lines (read-only here: each backend has its own class)."""
        ...

    @property
    def metrics(self) -> EndpointMetrics:
        """The endpoints' metrics buckets (each backend has its own class)."""
        ...

    async def close(self) -> None: ...
    async def ping(self) -> None:
        """Raise StoreUnavailable when the backend cannot be reached."""
        ...

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete the endpoint, its queued jobs, its workers' records, their logs and its
        metrics (it spans the roles: one call, on SQLite one transaction)."""
        ...


def open_store(url: str, clock: Clock, *, sqlite_sync: str = "NORMAL") -> JobStore:
    """`sqlite:///path/to/podium.db` or a bare path; `redis://host:port/db`."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from podium.store.redis import RedisStore

        return RedisStore(url, clock)
    from podium.store.sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return SQLiteStore(path, clock, sync=sqlite_sync)
