"""The distributed JobStore: one Redis server shared by any number of gateways.

Every method that changes a job is one Lua script: Redis runs it atomically, and each
script checks the job's current status (and, for worker calls, the worker that holds
it) before it changes anything, exactly like SQLiteStore's guarded transactions. Times
come from the injected clock and go into the scripts as arguments (never Redis TIME).

Key layout (`{p}` is the key prefix, `?prefix=` in the URL, default "podium"):

    {p}:seq                        string  counter: queue tiebreak and listing order
    {p}:job:{id}                   hash    the job's fields; input/output as JSON text
    {p}:stream:{id}                list    stream chunks (JSON text), in order
    {p}:q:{ep}, {p}:ql:{ep}        zset    queued jobs, normal / lowPriority; score
                                           queued_at, member "<seq:016d>:<id>", so ties
                                           fall back to submission order
    {p}:run:{ep}                   zset    IN_PROGRESS job ids
    {p}:fin:{STATUS}:{ep}          zset    final job ids per status, score purge_at
    {p}:retried:{ep}               zset    ids with retries > 0 (score purge_at or +inf)
    {p}:ix:ttl|exec|lease|purge    zset    deadlines, so expire() touches only due jobs
    {p}:h:{ep}, {p}:h:{ep}:{STATUS} zset   the history (podium.history): every job of the
                                           endpoint, and those of each status; score
                                           created_at, member id (ties: id order)
    {p}:hjob:{id}                  hash    a purged job's history record (no input or
                                           output) until {p}:ix:forget says forget it
    {p}:stop:{ep}:{worker}         zset    jobs the worker must stop (checked on read)
    {p}:wseen:{ep}                 zset    worker -> last_seen;  {p}:wstate:{ep},
                                           {p}:winfo:{ep} hashes: worker -> state, info
    {p}:endpoints, {p}:keys        hash    id -> JSON doc; `:order` zset (first put),
                                           `:lookup` hash (token/key hash -> id),
                                           `:lookup_of` hash (id -> token/key hash)
    {p}:settings                   hash    name -> value
    {p}:log*                               worker logs: store/redis_logs.py

Final jobs' job and stream keys also carry a key TTL (retention plus TTL_GRACE_MS), so
they vanish even when no reaper runs; expire() deletes them on time.

Waiting: every script publishes what it changed; store/redis_events.py wakes waiters in
every gateway on the prefix from one pattern subscription; a 1 s fallback poll (`?poll=`
in the URL) covers a lost subscription.
Redis Cluster is not supported (scripts compute their keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from podium import codec
from podium.clock import Clock
from podium.endpoints import Endpoint
from podium.errors import Conflict, NotFound, StoreUnavailable
from podium.history import HISTORY_ERROR_BYTES, HistoryPage, HistoryQuery
from podium.jobs import (
    DEFAULT_LIMITS,
    MS,
    WORKER_RECORDS_PER_ENDPOINT,
    Job,
    JobStatus,
    WorkerReport,
)
from podium.keys import ApiKey
from podium.store.base import (
    REAPER_QUARANTINE_ERROR,
    Appended,
    ExpireReport,
    FinishResult,
    StoreCounts,
    WorkerInfo,
    stream_limit_error,
)
from podium.store.redis_events import RedisEvents
from podium.store.redis_logs import RedisWorkerLogs
from podium.store.redis_logs import guarded as _guarded

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "podium"
FALLBACK_POLL_S = 1.0
TTL_GRACE_MS = 300_000  # final jobs' keys outlive their retention by this much
SOCKET_TIMEOUT_S = 5.0
HEALTH_CHECK_S = 10
MAX_CONNECTIONS = 64  # per store; `?max_connections=` in the URL overrides it
BATCH = 500  # jobs per script call in expire() and purge_queue()
SUBMIT_BATCH = 100  # submissions per script call at most (one event-loop turn's worth)
HISTORY_EXAMINE_MAX = 2000  # index entries one history page may walk (stale ones skipped)

_FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")

# --- Lua ------------------------------------------------------------------------------
# The scripts live beside this module in lua/<name>.lua (prelude.lua says what every
# script receives and returns).

_LUA_DIR = Path(__file__).with_name("lua")


def _lua(name: str) -> str:
    return (_LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


# Facts of podium.jobs the scripts need, as Lua constants ahead of the prelude.
_PRELUDE = f"local WORKER_RECORDS = {WORKER_RECORDS_PER_ENDPOINT}\n" + _lua("prelude")

# The scripts of store/lua/<name>.lua, each run after the prelude.
_SCRIPTS = (
    "submit",
    "take",
    "finish",
    "progress",
    "append_stream",
    "read_stream",
    "cancel",
    "retry",
    "purge_queue",
    "set_retention",
    "heartbeat",
    "jobs_to_stop",
    "workers",
    "counts",
    "expire",
    "history",
    "put_doc",
    "doc_by_lookup",
    "list_docs",
    "delete_endpoint",
)

# --- conversions ---------------------------------------------------------------------


def _num(x: float) -> str:
    """A float as text that reads back to the same float (Lua and ZADD parse it exactly)."""
    return repr(float(x))


def _dumps(value: Any) -> str:
    return codec.dumps_text(value)


def _opt(value: str | None) -> list[str]:
    """An optional script argument: a presence flag, then the value."""
    return ["0", ""] if value is None else ["1", value]


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def _job(flat: list[str] | dict[str, str]) -> Job:
    h = flat if isinstance(flat, dict) else _pairs(flat)
    return Job(
        id=h["id"],
        endpoint_id=h["ep"],
        status=JobStatus(h["status"]),
        input_json=h.get("input"),
        webhook=h.get("webhook"),
        execution_timeout_ms=int(h["exec_ms"]),
        ttl_ms=int(h["ttl_ms"]),
        low_priority=h["low"] == "1",
        retention_ms=int(h["retention_ms"]),
        created_at=float(h["created_at"]),
        started_at=_float(h.get("started_at")),
        finished_at=_float(h.get("finished_at")),
        worker_id=h.get("worker"),
        output_json=h.get("output"),
        error=h.get("error"),
        retries=int(h["retries"]),
        lease_until=_float(h.get("lease_until")),
        stream_read=int(h["stream_read"]),
        s3_config_json=h.get("s3_config"),
    )


def _history_job(endpoint_id: str, row: list[str | None]) -> Job:
    """A row of the history script: id, status, created_at, started_at, finished_at,
    worker, retries, error (cut)."""
    job_id, status, created, started, finished, worker, retries, error = row
    return Job(
        id=str(job_id),
        endpoint_id=endpoint_id,
        input_json=None,
        status=JobStatus(status),
        created_at=float(created or 0.0),
        started_at=_float(started),
        finished_at=_float(finished),
        worker_id=worker,
        retries=int(retries or 0),
        error=error,
    )


def _decoded(flat: list[str]) -> Job | None:
    """A job of the reaper's report; a record that cannot be read is logged and left out
    (its own transition already happened in the script)."""
    try:
        return _job(flat)
    except (KeyError, ValueError) as exc:
        log.error("reaper: a job record cannot be read (%s: %s)", type(exc).__name__, exc)
        return None


def _split_options(url: str) -> tuple[str, str, float]:
    """Take Podium's own options out of the URL's query; redis-py gets the rest:
    `prefix` (key prefix) and `poll` (the fallback poll of waiters, seconds)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("prefix", "poll")}
    prefix = ours.get("prefix") or DEFAULT_PREFIX
    try:
        poll = float(ours.get("poll") or FALLBACK_POLL_S)
    except ValueError:
        raise ValueError(f"`poll` in the store URL must be seconds, got {ours['poll']!r}") from None
    if not 0 < poll < 3600:
        raise ValueError(f"`poll` in the store URL must be between 0 and 3600 s, got {poll}")
    rest = urlencode([(k, v) for k, v in query if k not in ours])
    return urlunsplit(parts._replace(query=rest)), prefix, poll


def _failure(where: str, exc: RedisError) -> StoreUnavailable:
    """Name the cause of a Redis failure (docs/deployment.md, "When the store fails")."""
    text = str(exc).rstrip(".")
    if isinstance(exc, AuthenticationError):
        why = f"refused the credentials ({text}); fix the user or password in the store URL"
    elif isinstance(exc, BusyLoadingError):
        why = "is loading its data set into memory; retry in a moment"
    elif isinstance(exc, RedisConnectionError | RedisTimeoutError):
        why = (
            f"cannot be reached ({text}); check that Redis is running and that the store URL "
            "points at it"
        )
    elif isinstance(exc, ReadOnlyError):
        why = "is a read-only replica; point the store URL at the primary"
    elif isinstance(exc, OutOfMemoryError) or text.startswith("OOM"):
        why = (
            f"is out of memory ({text}); raise its maxmemory or free memory — Podium needs "
            "the noeviction policy, so Redis refuses writes instead of dropping jobs"
        )
    elif text.startswith("MISCONF"):
        why = f"refuses writes because it cannot persist ({text})"
    else:
        why = f"answered an error ({type(exc).__name__}: {text})"
    return StoreUnavailable(f"The Redis store at {where} {why}.")


# Take the lock, or renew it when this owner holds it. The lease runs on the injected
# clock (ARGV now) like everything else; the key TTL (real time) only cleans up.
_HOLD_LOCK = _lua("hold_lock")


# --- the store -----------------------------------------------------------------------


class RedisStore:
    def __init__(self, url: str, clock: Clock) -> None:
        self.clock = clock
        redis_url, self.prefix, self._poll_s = _split_options(url)
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            # A burst of calls waits for a free connection instead of failing at once.
            max_connections=MAX_CONNECTIONS,
            timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            # No silent retries: a script replayed after a lost reply could apply twice.
            retry=Retry(NoBackoff(), 0),
            # Off, not "auto": with "auto" redis-py 8 skips its check for pooled
            # connections that a Redis restart closed, and the next call fails.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        kw = self._redis.connection_pool.connection_kwargs
        self.where = kw.get("path") or f"{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}"
        self._scripts: dict[str, AsyncScript] = {
            name: self._redis.register_script(_PRELUDE + _lua(name)) for name in _SCRIPTS
        }
        self._lock_script = self._redis.register_script(_HOLD_LOCK)
        self._submits: list[tuple[list[str], asyncio.Future[str]]] = []  # for the next call
        self._submit_tasks: set[asyncio.Task[None]] = set()
        self.logs = RedisWorkerLogs(self._redis, self.prefix, clock, self._unavailable)
        self._events = RedisEvents(self._redis, self.prefix, self.where)

    # --- helpers -----------------------------------------------------------------------

    def _unavailable(self, exc: RedisError) -> StoreUnavailable:
        return _failure(self.where, exc)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, name: str, *args: str, now: float | None = None) -> list[Any]:
        """Run one script; notify locally what it published; return its reply."""
        when = self.clock.now() if now is None else now
        res = await self._scripts[name](
            args=[self.prefix, self._events.origin, _num(when), str(TTL_GRACE_MS), *args]
        )
        for key in res[0]:
            self._events.notify(key)
        return list(res[1:])

    @staticmethod
    def _check(res: list[Any], job_id: str, worker_id: str | None = None) -> None:
        """Raise what a script's 'notfound' / 'conflict' (worker guard) reply means."""
        if res[0] == "notfound":
            raise NotFound(f"Job {job_id} does not exist (or its retention ran out).")
        if res[0] == "conflict" and worker_id is not None:
            raise Conflict(f"Worker {worker_id} does not hold job {job_id}.")

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the subscriber and close connections; the data stays in Redis."""
        await self._events.close()
        if self._submit_tasks:  # submissions on their way land (or fail) first
            await asyncio.gather(*self._submit_tasks, return_exceptions=True)
        await self._redis.aclose()

    @_guarded
    async def ping(self) -> None:
        await self._redis.ping()

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
        fields = {
            "id": job.id,
            "ep": job.endpoint_id,
            "input": job.input_json,
            "webhook": job.webhook,
            "exec_ms": str(job.execution_timeout_ms),
            "ttl_ms": str(job.ttl_ms),
            "low": "1" if job.low_priority else "0",
            "retention_ms": str(job.retention_ms),
            "retry_limit": str(retry_limit),
            "created_at": queued_at,
            "queued_at": queued_at,
            "ttl_deadline": ttl_deadline,
            "s3_config": job.s3_config_json,
        }
        pairs = [x for k, v in fields.items() if v is not None for x in (k, v)]
        head = [job.id, job.endpoint_id, fields["low"], queued_at, ttl_deadline]
        return [*head, str(len(pairs)), *pairs]

    @_guarded
    async def get(self, job_id: str) -> Job | None:
        h = await self._redis.hgetall(self._k("job", job_id))
        return _job(h) if h else None

    @_guarded
    async def cancel(self, job_id: str) -> Job:
        res = await self._run("cancel", job_id)
        self._check(res, job_id)
        return _job(res[1])

    @_guarded
    async def retry(self, job_id: str) -> Job:
        res = await self._run("retry", job_id)
        self._check(res, job_id)  # NotFound
        if res[0] == "conflict":
            raise Conflict(
                f"Job {job_id} is {res[1]}; only FAILED or TIMED_OUT jobs can be retried."
            )
        return _job(res[1])

    @_guarded
    async def purge_queue(self, endpoint_id: str) -> int:
        total = 0
        while True:
            removed, scanned = await self._run("purge_queue", endpoint_id, str(BATCH))
            total += removed
            if scanned < BATCH:
                return total

    @_guarded
    async def set_retention(self, job_id: str, retention_ms: int) -> None:
        await self._run("set_retention", job_id, str(int(retention_ms)))

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
    async def progress(self, job_id: str, worker_id: str, output_json: str | None) -> Job:
        res = await self._run("progress", job_id, worker_id, *_opt(output_json))
        self._check(res, job_id, worker_id)
        return _job(res[1])

    @_guarded
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

    @_guarded
    async def heartbeat(
        self,
        endpoint_id: str,
        worker_id: str,
        job_ids: list[str],
        lease_s: float,
        state: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock.now()
        await self._run(
            "heartbeat",
            endpoint_id,
            worker_id,
            _num(now + lease_s),
            *_opt(state),
            *_opt(None if info is None else _dumps(info)),
            *job_ids,
            now=now,
        )

    @_guarded
    async def jobs_to_stop(self, endpoint_id: str, worker_id: str) -> list[str]:
        [ids] = await self._run("jobs_to_stop", endpoint_id, worker_id)
        return list(ids)

    @_guarded
    async def workers(self, endpoint_id: str, alive_since: float) -> list[WorkerInfo]:
        [rows] = await self._run("workers", endpoint_id, _num(alive_since))
        return [
            WorkerInfo(
                endpoint_id=endpoint_id,
                worker_id=w,
                last_seen=float(seen),
                jobs=len(held),
                state=state,
                info=codec.loads_trusted(info),
                job_ids=tuple(sorted(held)),
            )
            for w, seen, state, info, held in sorted(rows, key=lambda row: row[0])
        ]

    # --- reaper ------------------------------------------------------------------------

    @_guarded
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

    @_guarded
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

    # --- endpoints, keys, settings -----------------------------------------------------

    @_guarded
    async def put_endpoint(self, endpoint: Endpoint) -> None:
        doc = codec.dumps_text(endpoint.to_doc())
        res = await self._run("put_doc", "endpoints", endpoint.id, endpoint.worker_token_hash, doc)
        if res[0] == "conflict":
            raise Conflict(f"Another endpoint already uses the worker token of {endpoint.id}.")

    @_guarded
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        doc = await self._redis.hget(self._k("endpoints"), endpoint_id)
        return None if doc is None else Endpoint.from_doc(codec.loads_trusted(doc))

    @_guarded
    async def list_endpoints(self) -> list[Endpoint]:
        [docs] = await self._run("list_docs", "endpoints")
        return [Endpoint.from_doc(codec.loads_trusted(d)) for d in docs if d]

    @_guarded
    async def delete_endpoint(self, endpoint_id: str) -> bool:
        [existed] = await self._run("delete_endpoint", endpoint_id)
        await self.purge_queue(endpoint_id)
        await self.logs.delete_endpoint(endpoint_id)
        return bool(existed)

    @_guarded
    async def endpoint_by_token_hash(self, token_hash: str) -> Endpoint | None:
        res = await self._run("doc_by_lookup", "endpoints", token_hash)
        return Endpoint.from_doc(codec.loads_trusted(res[0])) if res and res[0] else None

    @_guarded
    async def put_key(self, key: ApiKey) -> None:
        res = await self._run("put_doc", "keys", key.id, key.hash, key.to_doc())
        if res[0] == "conflict":
            raise Conflict(f"Another API key already has the hash of key {key.id}.")

    @_guarded
    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        res = await self._run("doc_by_lookup", "keys", key_hash)
        return ApiKey.from_doc(res[0]) if res and res[0] else None

    @_guarded
    async def list_keys(self) -> list[ApiKey]:
        [docs] = await self._run("list_docs", "keys")
        return [ApiKey.from_doc(d) for d in docs if d]

    @_guarded
    async def get_setting(self, name: str) -> str | None:
        value: str | None = await self._redis.hget(self._k("settings"), name)
        return value

    @_guarded
    async def set_setting_if_absent(self, name: str, value: str) -> bool:
        return bool(await self._redis.hsetnx(self._k("settings"), name, value))

    @_guarded
    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        key = self._k("lock", name)
        now = self.clock.now()
        ms = max(1, int(lease_s * 1000))
        return bool(
            await self._lock_script(keys=[key], args=[owner, _num(now), _num(now + lease_s), ms])
        )
