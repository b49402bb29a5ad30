"""The job domain: statuses, the state machine, policies, limits and ids. Pure: no I/O.

Every fact of the RunPod wire protocol that is a number or a name lives here once
(see ../shared/docs/PROTOCOL.md). Times are float seconds since the epoch; policy
values on the wire are milliseconds.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from podium import codec
from podium.errors import BadRequest

__all__ = [
    "FINAL_STATUSES",
    "WORKER_ID_MAX_CHARS",
    "WORKER_RECORDS_PER_ENDPOINT",
    "Job",
    "JobStatus",
    "Limits",
    "Policy",
    "Submission",
    "WorkerReport",
    "can_transition",
    "clamp_wait_ms",
    "new_job_id",
    "parse_policy",
    "parse_query_ms",
    "parse_submission",
    "parse_worker_report",
    "status_object",
]


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


FINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
)

# The state machine of ARCHITECTURE.md: from -> allowed targets. The stores enforce it in
# SQL and Lua; tests/store/test_state_machine.py checks both against this table.
_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.IN_QUEUE: frozenset(
        {JobStatus.IN_PROGRESS, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
    ),
    JobStatus.IN_PROGRESS: frozenset(
        {
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.TIMED_OUT,
            JobStatus.CANCELLED,
            JobStatus.IN_QUEUE,  # lease lost, retried
        }
    ),
    JobStatus.FAILED: frozenset({JobStatus.IN_QUEUE}),  # /retry
    JobStatus.TIMED_OUT: frozenset({JobStatus.IN_QUEUE}),  # /retry
    JobStatus.COMPLETED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in _TRANSITIONS[current]


# --- limits and defaults (one place) -------------------------------------------------

MS = 1000.0
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Protocol limits and defaults. Gateways may override some through Settings."""

    execution_timeout_default_ms: int = 600_000
    execution_timeout_min_ms: int = 5_000
    execution_timeout_max_ms: int = 7 * DAY_MS
    ttl_default_ms: int = DAY_MS
    ttl_min_ms: int = 1_000
    ttl_max_ms: int = 7 * DAY_MS
    retention_run_ms: int = 30 * 60_000
    retention_sync_ms: int = 60_000
    # `/status?ttl=` sets a job's retention to 0 … this (RunPod: a job lives at most 7 days)
    retention_max_ms: int = 7 * DAY_MS
    # How long a finished job's record (no input, no output) stays in the history after
    # retention deleted its data; 0 keeps no history past retention.
    history_ms: int = DAY_MS
    history_page_default: int = 20
    history_page_max: int = 100
    # How long the OpenAI-compatible routes wait for a job (the openai client's default
    # timeout is 600 s).
    openai_wait_max_ms: int = 600_000
    runsync_wait_default_ms: int = 90_000
    runsync_wait_min_ms: int = 1_000
    runsync_wait_max_ms: int = 300_000
    status_sync_wait_min_ms: int = 1_000
    status_sync_wait_max_ms: int = 90_000
    status_wait_max_ms: int = 90_000
    body_run_bytes: int = 10 * 1024 * 1024
    body_runsync_bytes: int = 20 * 1024 * 1024
    result_bytes: int = 20 * 1024 * 1024
    stream_chunk_bytes: int = 1024 * 1024
    take_hold_s: float = 30.0
    take_batch_max: int = 64
    ping_interval_ms: int = 10_000
    lease_missed_pings: int = 3
    retry_limit_default: int = 2


DEFAULT_LIMITS = Limits()

# A worker id (RUNPOD_POD_ID, the {worker_id} of the worker routes): the store keeps one
# record per id, so ids are bounded like every stored value.
WORKER_ID_MAX_CHARS = 256
# Worker records one endpoint keeps (its workers' pings and polls); a new id past it
# pushes out the one seen least recently, so a worker token cannot grow the store.
WORKER_RECORDS_PER_ENDPOINT = 1000

# Per endpoint per 10 s window (RunPod's published numbers).
RATE_WINDOW_S = 10.0
RATE_LIMITS: dict[str, int] = {
    "run": 1000,
    "runsync": 2000,
    "status": 2000,
    "stream": 2000,
    "cancel": 100,
    "purge-queue": 2,
    "openai": 2000,
    "requests": 10,
    "metrics": 100,
}


def new_job_id(sync: bool = False) -> str:
    base = str(uuid.uuid4())
    return f"sync-{base}" if sync else base


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def clamp_wait_ms(raw: str | None, default: int, lo: int, hi: int, name: str = "wait") -> int:
    """Parse a `wait` query value in ms and clamp it to [lo, hi]."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be a number of milliseconds, got {_shown(raw)}.") from None
    if not math.isfinite(value):
        raise BadRequest(
            f"`{name}` must be a finite number of milliseconds (at most {hi}), got {_shown(raw)}."
        )
    return max(lo, min(hi, int(value)))


def parse_query_ms(raw: str, name: str, lo: int, hi: int) -> int:
    """A whole number of milliseconds in [lo, hi] from a query string, or BadRequest."""
    if not codec.ascii_digits(raw) or len(raw) > 18 or not lo <= int(raw) <= hi:
        raise BadRequest(
            f"`{name}` must be a whole number of milliseconds between {lo} and {hi}, "
            f"got {_shown(raw)}."
        )
    return int(raw)


# --- policy and submission -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    execution_timeout_ms: int
    ttl_ms: int
    low_priority: bool = False


def _policy_int(policy: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    if key not in policy or policy[key] is None:
        return default
    value = policy[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(
            f"policy.{key} must be a number of milliseconds, got {codec.dumps_text(value)[:40]}."
        )
    if value != int(value):
        raise BadRequest(f"policy.{key} must be a whole number of milliseconds, got {value}.")
    if not lo <= value <= hi:
        raise BadRequest(f"policy.{key} must be between {lo} and {hi} ms, got {int(value)}.")
    return int(value)


def parse_policy(
    raw: Any, limits: Limits = DEFAULT_LIMITS, execution_timeout_default_ms: int | None = None
) -> Policy:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest(f"`policy` must be an object, got {type(raw).__name__}.")
    unknown = sorted(set(raw) - {"executionTimeout", "ttl", "lowPriority"})
    if unknown:
        raise BadRequest(
            f"Unknown policy field(s) {', '.join(unknown)}; "
            "valid fields are executionTimeout, ttl, lowPriority."
        )
    low = raw.get("lowPriority", False)
    if low is None:
        low = False
    if not isinstance(low, bool):
        raise BadRequest(
            f"policy.lowPriority must be true or false, got {codec.dumps_text(low)[:40]}."
        )
    return Policy(
        execution_timeout_ms=_policy_int(
            raw,
            "executionTimeout",
            execution_timeout_default_ms or limits.execution_timeout_default_ms,
            limits.execution_timeout_min_ms,
            limits.execution_timeout_max_ms,
        ),
        ttl_ms=_policy_int(raw, "ttl", limits.ttl_default_ms, limits.ttl_min_ms, limits.ttl_max_ms),
        low_priority=low,
    )


@dataclass(frozen=True, slots=True)
class Submission:
    input_json: str  # the input as compact JSON text (codec.split took it out of the body)
    policy: Policy
    webhook: str | None = None
    s3_config_json: str | None = None  # the client's s3Config, as compact JSON text


def parse_submission(
    body: Any,
    input_json: str | None,
    limits: Limits = DEFAULT_LIMITS,
    execution_timeout_default_ms: int | None = None,
) -> Submission:
    """Validate a decoded /run or /runsync body; `input_json` is its `input` as JSON
    text, taken out of `body` by codec.split (None when the body had none)."""
    if not isinstance(body, dict):
        raise BadRequest(
            f'The request body must be a JSON object like {{"input": {{...}}}}, '
            f"got {type(body).__name__}."
        )
    if input_json is None or input_json == "null":
        raise BadRequest('The request body has no "input"; send {"input": {...}}.')
    webhook = body.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise BadRequest(f"`webhook` must be an http(s) URL, got {codec.dumps_text(webhook)[:80]}.")
    s3 = body.get("s3Config")
    if s3 is not None and not isinstance(s3, dict):
        raise BadRequest("`s3Config` must be an object.")
    return Submission(
        input_json=input_json,
        policy=parse_policy(body.get("policy"), limits, execution_timeout_default_ms),
        webhook=webhook,
        s3_config_json=None if s3 is None else codec.dumps_text(s3),
    )


# --- the job record --------------------------------------------------------------------


@dataclass(slots=True)
class Job:
    """A job as the stores keep it. Input and output stay JSON text end to end: they
    were checked by the codec on the way in and are spliced into what goes out."""

    id: str
    endpoint_id: str
    input_json: str | None
    status: JobStatus = JobStatus.IN_QUEUE
    webhook: str | None = None
    execution_timeout_ms: int = DEFAULT_LIMITS.execution_timeout_default_ms
    ttl_ms: int = DEFAULT_LIMITS.ttl_default_ms
    low_priority: bool = False
    retention_ms: int = DEFAULT_LIMITS.retention_run_ms
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    output_json: str | None = None
    error: str | None = None
    retries: int = 0
    lease_until: float | None = None
    stream_read: int = 0
    # The client's s3Config (JSON text): handed to the worker with the job, as RunPod
    # does (the SDK's upload helpers read job["s3Config"]); deleted with the job's data.
    s3_config_json: str | None = None

    @property
    def input(self) -> Any:
        return None if self.input_json is None else codec.loads_trusted(self.input_json)

    @property
    def output(self) -> Any:
        return None if self.output_json is None else codec.loads_trusted(self.output_json)

    @classmethod
    def new(
        cls,
        endpoint_id: str,
        sub: Submission,
        now: float,
        retention_ms: int,
        sync: bool = False,
    ) -> Job:
        return cls(
            id=new_job_id(sync),
            endpoint_id=endpoint_id,
            input_json=sub.input_json,
            webhook=sub.webhook,
            execution_timeout_ms=sub.policy.execution_timeout_ms,
            ttl_ms=sub.policy.ttl_ms,
            low_priority=sub.policy.low_priority,
            retention_ms=retention_ms,
            created_at=now,
            s3_config_json=sub.s3_config_json,
        )

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    # Deadlines (None when not applicable in the current state).
    def ttl_deadline(self) -> float | None:
        if self.final:
            return None
        return self.created_at + self.ttl_ms / MS

    def execution_deadline(self) -> float | None:
        if self.status is not JobStatus.IN_PROGRESS or self.started_at is None:
            return None
        return self.started_at + self.execution_timeout_ms / MS

    def retention_deadline(self) -> float | None:
        if not self.final or self.finished_at is None:
            return None
        return self.finished_at + self.retention_ms / MS

    def work_item(self) -> dict[str, Any]:
        """The job object a worker receives from job-take."""
        raw = self.input_json if self.input_json is not None else "null"
        item: dict[str, Any] = {"id": self.id, "input": codec.fragment(raw)}
        if self.webhook:
            item["webhook"] = self.webhook
        item["policy"] = {
            "executionTimeout": self.execution_timeout_ms,
            "ttl": self.ttl_ms,
            "lowPriority": self.low_priority,
        }
        if self.s3_config_json is not None:
            item["s3Config"] = codec.fragment(self.s3_config_json)
        return item


def _ms_between(a: float | None, b: float | None) -> int:
    if a is None or b is None:
        return 0
    return max(0, round((b - a) * MS))


def status_object(job: Job, now: float) -> dict[str, Any]:
    """The client-facing status JSON (PROTOCOL.md §1)."""
    obj: dict[str, Any] = {"id": job.id, "status": job.status.value}
    if job.started_at is not None:
        obj["delayTime"] = _ms_between(job.created_at, job.started_at)
    if job.status is JobStatus.IN_PROGRESS:
        obj["executionTime"] = _ms_between(job.started_at, now)
    elif job.started_at is not None:
        obj["executionTime"] = _ms_between(job.started_at, job.finished_at)
    if job.output_json is not None:
        obj["output"] = codec.fragment(job.output_json)
    if job.error is not None:
        obj["error"] = job.error
    if job.worker_id is not None:
        obj["workerId"] = job.worker_id
    obj["retries"] = job.retries
    return obj


# --- what a worker posts to job-done -------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """A parsed job-done body.

    `kind` is "progress" (job keeps running; `output_json` is the progress value) or
    "final" (`status` COMPLETED or FAILED). Output is JSON text (None: no output).
    """

    kind: str
    status: JobStatus | None = None
    output_json: str | None = None
    error: str | None = None
    stop_pod: bool = False

    @property
    def streamed(self) -> bool:
        """A generator handler without aggregation: its chunks are the output."""
        return self.status is JobStatus.COMPLETED and self.output_json == "[]"


def parse_worker_report(body: Any, output_json: str | None, is_stream: bool) -> WorkerReport:
    """A job-done body, decoded whatever its Content-Type (the SDK mislabels raw JSON)
    by codec.split, which took `output` out as JSON text (None when absent).

    Raises BadRequest for a body that is not a JSON object; the caller then fails the
    job with a clear error (never COMPLETED without output).
    """
    if body is None:  # an empty body
        body = {}
    if not isinstance(body, dict):
        raise BadRequest(f"The job-done body must be a JSON object, got {type(body).__name__}.")
    stop_pod = bool(body.get("stopPod", False))
    given = output_json is not None  # `{"output": null}` is given, but no output
    if output_json == "null":
        output_json = None
    if body.get("status") == JobStatus.IN_PROGRESS.value and not is_stream:
        return WorkerReport(kind="progress", output_json=output_json)
    error = body.get("error")
    if error is not None:
        if not isinstance(error, str):
            error = codec.dumps_text(error)
        return WorkerReport(
            kind="final",
            status=JobStatus.FAILED,
            output_json=output_json,
            error=error or "The handler reported an empty error.",
            stop_pod=stop_pod,
        )
    return WorkerReport(
        kind="final",
        status=JobStatus.COMPLETED,
        output_json=output_json if given else "{}",  # an empty dict arrives as no key
        stop_pod=stop_pod,
    )
