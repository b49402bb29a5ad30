"""Worker log lines: the records, the wire shapes and the limits. Pure: no I/O.

A line is one line of what a worker wrote to stdout or stderr (one pipe, so the two are
interleaved as written): its capture time (the shipper's clock), its text (at most
LINE_MAX_BYTES of UTF-8; longer lines are cut, invalid UTF-8 is replaced) and the ids of
the jobs the worker was running when it wrote it (podium.logs.markers). The store gives
each line a `seq`: increasing across the whole store, it is the cursor of `since=` and
of a follower.

What the store keeps (LogBudget): each worker's last `lines_per_worker` lines; of one
endpoint, the logs of at most `workers_per_endpoint` workers and `bytes_per_endpoint`
bytes (a line costs its text and job ids in UTF-8 plus LINE_COST_OVERHEAD). Past its
workers, the logs of the workers that wrote least recently go (the writer's own never);
past its bytes, its oldest lines go, whoever wrote them, until BYTES_LOW_WATER of the
budget is left (so that the next appends do not each trim again). So one endpoint's
worker token, whatever worker ids it invents, spends at most its endpoint's budget of the
store, never what others need.

Wire shape of a batch (`POST /v2/{ep}/worker-logs/{worker}`, docs/api.md):

    {"lines": [{"time": <epoch seconds>, "text": "...", "jobs": ["id", ...]}, ...],
     "dropped": <lines the shipper dropped before this batch (its buffer was full)>}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.clock import SKEW_MAX_S, check_time, iso_time
from podium.codec import ascii_digits
from podium.errors import BadRequest
from podium.history import cut_error
from podium.jobs import WORKER_ID_MAX_CHARS

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_LINES",
    "BYTES_LOW_WATER",
    "LINE_COST_OVERHEAD",
    "LINE_MAX_BYTES",
    "LogBudget",
    "LogLine",
    "LogQuery",
    "StoredLine",
    "batch_body",
    "cut_line",
    "dropped_line",
    "line_cost",
    "parse_batch",
    "parse_log_query",
]

LINE_MAX_BYTES = 4096  # a longer line is cut (ending in an ellipsis)
BATCH_MAX_LINES = 1000  # lines in one shipped batch
BATCH_MAX_BYTES = 1024 * 1024  # body of one shipped batch (the worker route's limit)
JOBS_PER_LINE_MAX = 64  # job ids on one line (a worker's concurrency)
JOB_ID_MAX_CHARS = 256
TAIL_DEFAULT = 100
TAIL_MAX = 10_000  # lines one read returns
LINES_PER_WORKER_DEFAULT = 5000  # what the store keeps per worker (PODIUM_LOG_LINES_PER_WORKER)
WORKERS_PER_ENDPOINT_DEFAULT = 256  # workers' logs per endpoint (PODIUM_LOG_WORKERS_PER_ENDPOINT)
BYTES_PER_ENDPOINT_DEFAULT = 64 * 1024 * 1024  # PODIUM_LOG_BYTES_PER_ENDPOINT
LINE_COST_OVERHEAD = 64  # bytes a stored line costs beside its text and job ids
BYTES_LOW_WATER = 0.9  # past its bytes, an endpoint's oldest lines go until this is left
RETENTION_DEFAULT_MS = 7 * 24 * 3600 * 1000  # a silent worker's log is forgotten after this
RETENTION_MAX_MS = 30 * 24 * 3600 * 1000  # (the Redis store's key TTL)


@dataclass(frozen=True, slots=True)
class LogBudget:
    """What the store keeps of an endpoint's worker logs (see the module docstring)."""

    lines_per_worker: int = LINES_PER_WORKER_DEFAULT
    workers_per_endpoint: int = WORKERS_PER_ENDPOINT_DEFAULT
    bytes_per_endpoint: int = BYTES_PER_ENDPOINT_DEFAULT


def line_cost(text: str, jobs_json: str) -> int:
    """What one stored line counts against its endpoint's bytes (both stores agree:
    SQLite's triggers and the Redis script count the same UTF-8 bytes)."""
    return len(text.encode()) + len(jobs_json.encode()) + LINE_COST_OVERHEAD


def cut_line(text: str) -> str:
    """One line as it is kept: no line break at its end, at most LINE_MAX_BYTES bytes."""
    return cut_error(text.rstrip("\r\n"), LINE_MAX_BYTES) or ""


def dropped_line(count: int) -> str:
    """The line the gateway stores where a shipper dropped lines."""
    return (
        f"--- podium: {count} line(s) dropped here: the worker's log buffer was full "
        "while the gateway could not be reached ---"
    )


@dataclass(frozen=True, slots=True)
class LogLine:
    """A line as a worker shipped it."""

    at: float  # capture time, epoch seconds
    text: str
    jobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A line as the store keeps it."""

    seq: int
    worker_id: str
    at: float
    text: str
    jobs: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "workerId": self.worker_id,
            "time": iso_time(self.at),
            "text": self.text,
            "jobs": list(self.jobs),
        }


def batch_body(lines: Sequence[LogLine], dropped: int) -> dict[str, Any]:
    """A batch on the wire (what parse_batch reads)."""
    return {
        "lines": [{"time": ln.at, "text": ln.text, "jobs": list(ln.jobs)} for ln in lines],
        "dropped": dropped,
    }


def _job_ids(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > JOBS_PER_LINE_MAX:
        raise BadRequest(
            f"`{where}.jobs` must be a list of at most {JOBS_PER_LINE_MAX} job ids, "
            f"got {type(value).__name__} of {len(value) if isinstance(value, list) else 1}."
        )
    for job in value:
        if not isinstance(job, str) or not job or len(job) > JOB_ID_MAX_CHARS:
            raise BadRequest(
                f"`{where}.jobs` must hold job ids (strings of 1 to {JOB_ID_MAX_CHARS} "
                f"characters), got {job!r:.80}."
            )
    return tuple(value)


def parse_batch(body: Any, now: float) -> tuple[list[LogLine], int]:
    """A shipped batch -> (lines, dropped). Texts are cut to LINE_MAX_BYTES; a missing
    time is `now`. BadRequest names the first problem."""
    if not isinstance(body, dict):
        raise BadRequest(f"The log batch must be a JSON object, got {type(body).__name__}.")
    raw_lines = body.get("lines", [])
    if not isinstance(raw_lines, list):
        raise BadRequest(f"`lines` must be a list, got {type(raw_lines).__name__}.")
    if len(raw_lines) > BATCH_MAX_LINES:
        raise BadRequest(
            f"A log batch holds at most {BATCH_MAX_LINES} lines, got {len(raw_lines)}: "
            "send smaller batches."
        )
    dropped = body.get("dropped", 0)
    if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
        raise BadRequest(f"`dropped` must be a count (an integer >= 0), got {dropped!r:.40}.")
    lines: list[LogLine] = []
    for i, item in enumerate(raw_lines):
        where = f"lines[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"`{where}` must be an object, got {type(item).__name__}.")
        text = item.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"`{where}.text` must be a string, got {type(text).__name__}.")
        at = item.get("time", now)
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise BadRequest(f"`{where}.time` must be epoch seconds (a number), got {at!r:.40}.")
        # Not older than the store keeps a log, not beyond the skew a worker's clock may have
        check_time(float(at), f"{where}.time", now - RETENTION_MAX_MS / 1000, now + SKEW_MAX_S)
        lines.append(LogLine(float(at), cut_line(text), _job_ids(item.get("jobs"), where)))
    return lines, dropped


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which lines to read. Without `since`: the last `tail` lines that match, oldest
    first. With `since`: the lines after that seq that match, oldest first, at most
    `tail` (page on with the answer's cursor)."""

    worker: str | None = None
    job: str | None = None
    tail: int = TAIL_DEFAULT
    since: int | None = None

    def matches(self, line: StoredLine) -> bool:
        return (self.worker is None or line.worker_id == self.worker) and (
            self.job is None or self.job in line.jobs
        )


def _int_param(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not ascii_digits(raw) or len(raw) > 19:
        raise BadRequest(f"`{name}` must be a whole number (digits 0-9), got {raw!r:.40}.")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"`{name}` must be between {low} and {high}, got {value}.")
    return value


def parse_log_query(params: Mapping[str, str]) -> LogQuery:
    """`?worker=&job=&tail=&since=` -> LogQuery (BadRequest names a bad value)."""
    tail = _int_param(params, "tail", 0, TAIL_MAX)
    since = _int_param(params, "since", 0, 2**63 - 1)
    worker = params.get("worker") or None
    job = params.get("job") or None
    for name, value, limit in (
        ("worker", worker, WORKER_ID_MAX_CHARS),
        ("job", job, JOB_ID_MAX_CHARS),
    ):
        if value is not None and len(value) > limit:
            raise BadRequest(f"`{name}` must be at most {limit} characters, got {len(value)}.")
    return LogQuery(
        worker=worker,
        job=job,
        tail=TAIL_DEFAULT if tail is None else tail,
        since=since,
    )
