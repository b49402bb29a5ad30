"""The embedded JobStore: one SQLite file (WAL), for one gateway process on one machine.

Durability: WAL with synchronous=NORMAL. A transaction that committed before `/run`
answered survives `kill -9` of the gateway (it is in the WAL, handed to the OS); a
power cut may lose the last few transactions. `sync="FULL"` (PODIUM_SQLITE_SYNC=FULL)
fsyncs every commit.

Calls run directly on the event loop's thread: each statement touches a handful of
indexed rows (tens of microseconds), which is cheaper than a thread hop per call.
Waiting uses in-process notification plus a short fallback poll.

Inputs, outputs and stream chunks are JSON text admitted by podium.codec; the store
keeps and returns that text, never parsing it. The file, its -wal and -shm are created
0600 (they hold the fleet secret, webhook secrets and every job's data), whatever the
umask. Any failure of SQLite itself (disk full, I/O error, locked for longer than the
busy timeout, a damaged file) is StoreUnavailable, naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium import codec
from podium.clock import Clock
from podium.endpoints import Endpoint
from podium.errors import Conflict, NotFound, StoreUnavailable
from podium.history import HISTORY_ERROR_BYTES, HistoryPage, HistoryQuery, cut_error
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
from podium.store.notify import Notifier
from podium.store.sqlite_logs import SQLiteWorkerLogs
from podium.store.sqlite_logs import guarded as _guarded

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

FALLBACK_POLL_S = 1.0
SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    webhook TEXT,
    execution_timeout_ms INTEGER NOT NULL,
    ttl_ms INTEGER NOT NULL,
    low_priority INTEGER NOT NULL DEFAULT 0,
    retention_ms INTEGER NOT NULL,
    retry_limit INTEGER NOT NULL DEFAULT 2,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker_id TEXT,
    output TEXT,
    error TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    ttl_deadline REAL,
    exec_deadline REAL,
    purge_at REAL,
    stop_pending INTEGER NOT NULL DEFAULT 0,
    stream_len INTEGER NOT NULL DEFAULT 0,
    stream_read INTEGER NOT NULL DEFAULT 0,
    stream_bytes INTEGER NOT NULL DEFAULT 0,
    s3_config TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (endpoint_id, low_priority, queued_at)
    WHERE status = 'IN_QUEUE';
CREATE INDEX IF NOT EXISTS jobs_ttl ON jobs (ttl_deadline)
    WHERE status IN ('IN_QUEUE', 'IN_PROGRESS');
CREATE INDEX IF NOT EXISTS jobs_exec ON jobs (exec_deadline) WHERE status = 'IN_PROGRESS';
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_until) WHERE status = 'IN_PROGRESS';
CREATE INDEX IF NOT EXISTS jobs_purge ON jobs (purge_at) WHERE purge_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_worker ON jobs (endpoint_id, worker_id)
    WHERE worker_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status_history ON jobs (endpoint_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_history ON jobs (endpoint_id, created_at, id);
CREATE TABLE IF NOT EXISTS job_history (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker_id TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    forget_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_history_list ON job_history (endpoint_id, created_at, id);
CREATE INDEX IF NOT EXISTS job_history_status
    ON job_history (endpoint_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS job_history_forget ON job_history (forget_at);
CREATE TABLE IF NOT EXISTS stream (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    chunk TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    endpoint_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    last_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'idle',
    info TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (endpoint_id, worker_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL
);
"""

_JOB_COLUMNS = (
    "id, endpoint_id, status, input, webhook, execution_timeout_ms, ttl_ms, low_priority, "
    "retention_ms, created_at, started_at, finished_at, worker_id, output, error, retries, "
    "lease_until, stream_read, s3_config"
)
# What the history lists of a retained job (its error cut as HISTORY_ERROR_BYTES allows).
_HISTORY_COLUMNS = (
    "id, endpoint_id, status, created_at, started_at, finished_at, worker_id, retries"
)


# Columns added after the first release: (name, definition), added on open when missing.
_MIGRATIONS = (
    ("jobs", "stream_bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "s3_config", "TEXT"),
)
# Indexes that later ones made redundant: dropped on open.
_DROPPED_INDEXES = ("jobs_endpoint_status",)
_FILE_MODE = 0o600


def _dumps(value: Any) -> str | None:
    """Podium's own small records (worker info): never user JSON, which arrives as text."""
    return None if value is None else codec.dumps_text(value)


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        status=JobStatus(row["status"]),
        input_json=row["input"],
        webhook=row["webhook"],
        execution_timeout_ms=row["execution_timeout_ms"],
        ttl_ms=row["ttl_ms"],
        low_priority=bool(row["low_priority"]),
        retention_ms=row["retention_ms"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker_id=row["worker_id"],
        output_json=row["output"],
        error=row["error"],
        retries=row["retries"],
        lease_until=row["lease_until"],
        stream_read=row["stream_read"],
        s3_config_json=row["s3_config"],
    )


def _history_job(row: sqlite3.Row) -> Job:
    """A slim job of the history: no input, output or stream."""
    return Job(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        input_json=None,
        status=JobStatus(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker_id=row["worker_id"],
        error=cut_error(row["error"]),
        retries=row["retries"],
    )


class SQLiteStore:
    def __init__(self, path: str | os.PathLike[str], clock: Clock, sync: str = "NORMAL") -> None:
        if sync.upper() not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        sync = sync.upper()
        self.clock = clock
        self.path = Path(path)
        self.where = str(self.path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own_files()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._setup(sync)
            self.logs = SQLiteWorkerLogs(self._db, clock, self._unavailable)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        self._own_files()  # -wal and -shm exist now
        self._notifier = Notifier()
        self._pending_submits: list[tuple[Job, int, asyncio.Future[None]]] = []

    def _own_files(self) -> None:
        """The database file and its -wal / -shm: 0600, whatever the umask. The file is
        created here, before SQLite opens it; SQLite gives -wal and -shm its mode."""
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, _FILE_MODE))
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", _FILE_MODE)

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(f"The SQLite store at {self.path} failed: {exc}.")

    def _setup(self, sync: str) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        for table, column, definition in _MIGRATIONS:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if have and column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        self._db.executescript(_SCHEMA)
        for index in _DROPPED_INDEXES:
            self._db.execute(f"DROP INDEX IF EXISTS {index}")

    # --- helpers -----------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # pragma: no cover - disk gone, file locked for 10 s
            raise StoreUnavailable(f"The SQLite store cannot be written: {exc}.") from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _get(self, job_id: str) -> Job | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return None if row is None else _row_to_job(row)

    def _require(self, job_id: str) -> Job:
        job = self._get(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist (or its retention ran out).")
        return job

    def _changed(self, job: Job) -> None:
        self._notifier.notify("j:" + job.id)

    def _finalize(
        self,
        db: sqlite3.Connection,
        job_id: str,
        status: JobStatus,
        now: float,
        *,
        output: Any = None,
        error: str | None = None,
        stop: bool = False,
        keep_output: bool = False,
    ) -> None:
        """Move a job to a final status and schedule its deletion."""
        out_sql = "output" if keep_output else "?"
        params: list[Any] = [status.value, now, error]
        if not keep_output:
            params.append(output)
        params += [now, int(stop), job_id]
        db.execute(
            f"""UPDATE jobs SET status = ?, finished_at = ?, error = ?, output = {out_sql},
                   purge_at = ? + retention_ms / 1000.0, lease_until = NULL,
                   exec_deadline = NULL, ttl_deadline = NULL, stop_pending = ?
               WHERE id = ?""",
            params,
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        self._db.close()

    @_guarded
    async def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    # --- client side -------------------------------------------------------------------

    _INSERT_JOB = """INSERT INTO jobs (id, endpoint_id, status, input, webhook,
               execution_timeout_ms, ttl_ms, low_priority, retention_ms, retry_limit,
               created_at, queued_at, ttl_deadline, s3_config)
           VALUES (?, ?, 'IN_QUEUE', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

    @staticmethod
    def _job_row(job: Job, retry_limit: int) -> tuple[Any, ...]:
        return (
            job.id,
            job.endpoint_id,
            job.input_json,
            job.webhook,
            job.execution_timeout_ms,
            job.ttl_ms,
            int(job.low_priority),
            job.retention_ms,
            retry_limit,
            job.created_at,
            job.created_at,
            job.created_at + job.ttl_ms / MS,
            job.s3_config_json,
        )

    @_guarded
    async def submit(self, job: Job, retry_limit: int) -> None:
        """Group commit: submissions that arrive in the same event-loop turn share one
        transaction. Each caller returns only after its own row is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_submits.append((job, retry_limit, future))
        if len(self._pending_submits) == 1:
            asyncio.get_running_loop().call_soon(self._flush_submits)
        await future

    def _submit_error(self, job: Job, exc: Exception) -> Exception:
        """A taken id is a Conflict, as on Redis; other database errors: unavailable."""
        if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
            return Conflict(f"Job {job.id} already exists; submit it with a new id.")
        return self._unavailable(exc) if isinstance(exc, sqlite3.Error) else exc

    def _flush_submits(self) -> None:
        batch, self._pending_submits = self._pending_submits, []
        try:
            with self._tx() as db:
                db.executemany(self._INSERT_JOB, [self._job_row(j, r) for j, r, _ in batch])
        except Exception:
            # One bad row must not fail the others: insert them one by one.
            for job, retry_limit, future in batch:
                try:
                    with self._tx() as db:
                        db.execute(self._INSERT_JOB, self._job_row(job, retry_limit))
                except Exception as exc:
                    if not future.done():
                        future.set_exception(self._submit_error(job, exc))
                else:
                    self._settle(job, future)
            return
        for job, _, future in batch:
            self._settle(job, future)

    def _settle(self, job: Job, future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)
        self._notifier.notify("q:" + job.endpoint_id, 1)

    @_guarded
    async def get(self, job_id: str) -> Job | None:
        return self._get(job_id)

    @_guarded
    async def cancel(self, job_id: str) -> Job:
        now = self.clock.now()
        with self._tx() as db:
            job = self._require(job_id)
            if job.final:
                return job
            running = job.status is JobStatus.IN_PROGRESS
            self._finalize(db, job_id, JobStatus.CANCELLED, now, stop=running, keep_output=True)
        job = self._require(job_id)
        self._changed(job)
        return job

    @_guarded
    async def retry(self, job_id: str) -> Job:
        now = self.clock.now()
        with self._tx() as db:
            job = self._require(job_id)
            if job.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
                raise Conflict(
                    f"Job {job_id} is {job.status.value}; only FAILED or TIMED_OUT jobs "
                    "can be retried."
                )
            db.execute(
                """UPDATE jobs SET status = 'IN_QUEUE', output = NULL, error = NULL,
                       started_at = NULL, finished_at = NULL, worker_id = NULL,
                       lease_until = NULL, exec_deadline = NULL, purge_at = NULL,
                       stop_pending = 0, queued_at = ?, created_at = ?, ttl_deadline = ?,
                       stream_len = 0, stream_read = 0, stream_bytes = 0
                   WHERE id = ?""",
                (now, now, now + job.ttl_ms / MS, job_id),
            )
            db.execute("DELETE FROM stream WHERE job_id = ?", (job_id,))
        job = self._require(job_id)
        self._notifier.notify("q:" + job.endpoint_id)
        self._changed(job)
        return job

    @_guarded
    async def purge_queue(self, endpoint_id: str) -> int:
        with self._tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM jobs WHERE endpoint_id = ? AND status = 'IN_QUEUE'",
                    (endpoint_id,),
                )
            ]
            db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        for job_id in ids:
            self._notifier.notify("j:" + job_id)
        return len(ids)

    @_guarded
    async def set_retention(self, job_id: str, retention_ms: int) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE jobs SET retention_ms = ?,
                       purge_at = CASE WHEN finished_at IS NULL THEN NULL
                           ELSE finished_at + ? / 1000.0 END
                   WHERE id = ?""",
                (retention_ms, retention_ms, job_id),
            )

    @_guarded
    async def wait_for_change(
        self, job_id: str, seen: Job, timeout: float, final_only: bool = False
    ) -> Job | None:
        deadline = time.monotonic() + timeout
        while True:
            job = self._get(job_id)
            if job is None:
                return None
            if job.final or (not final_only and job.status is not seen.status):
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return job
            await self._notifier.wait("j:" + job_id, min(remaining, FALLBACK_POLL_S))

    @_guarded
    async def read_stream(
        self, job_id: str, wait: float = 0.0, seen: JobStatus | None = None
    ) -> tuple[Job | None, list[str]]:
        deadline = time.monotonic() + wait
        first = seen  # the status the caller knows (None: the one the wait begins with)
        while True:
            job, chunks = self._read_stream_now(job_id)
            remaining = deadline - time.monotonic()
            if first is None and job is not None:
                first = job.status
            if chunks or job is None or job.final or job.status is not first or remaining <= 0:
                return job, chunks
            await self._notifier.wait("j:" + job_id, min(remaining, FALLBACK_POLL_S))

    def _read_stream_now(self, job_id: str) -> tuple[Job | None, list[str]]:
        with self._tx() as db:
            job = self._get(job_id)
            if job is None:
                return None, []
            rows = db.execute(
                "SELECT idx, chunk FROM stream WHERE job_id = ? AND idx >= ? ORDER BY idx",
                (job_id, job.stream_read),
            ).fetchall()
            if rows:
                db.execute(
                    "UPDATE jobs SET stream_read = ? WHERE id = ?", (rows[-1][0] + 1, job_id)
                )
        return job, [r[1] for r in rows]

    @_guarded
    async def counts(self, endpoint_id: str) -> StoreCounts:
        c = StoreCounts()
        for status, n in self._db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE endpoint_id = ? GROUP BY status",
            (endpoint_id,),
        ):
            setattr(c, JobStatus(status).name.lower(), n)
        c.retried = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE endpoint_id = ? AND retries > 0", (endpoint_id,)
        ).fetchone()[0]
        for low, n, oldest in self._db.execute(
            """SELECT low_priority, COUNT(*), MIN(queued_at) FROM jobs
               WHERE endpoint_id = ? AND status = 'IN_QUEUE' GROUP BY low_priority""",
            (endpoint_id,),
        ):
            if low:
                c.in_queue_low = n
            else:
                c.oldest_queued_at = oldest
        return c

    # --- worker side -------------------------------------------------------------------

    def _take_now(self, endpoint_id: str, worker_id: str, n: int, lease_s: float) -> list[Job]:
        now = self.clock.now()
        with self._tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    """SELECT id FROM jobs WHERE endpoint_id = ? AND status = 'IN_QUEUE'
                       ORDER BY low_priority, queued_at, rowid LIMIT ?""",
                    (endpoint_id, n),
                )
            ]
            if not ids:
                self._touch_worker(db, endpoint_id, worker_id, now)
                return []
            db.executemany(
                """UPDATE jobs SET status = 'IN_PROGRESS', worker_id = ?, started_at = ?,
                       lease_until = ?, exec_deadline = ? + execution_timeout_ms / 1000.0
                   WHERE id = ? AND status = 'IN_QUEUE'""",
                [(worker_id, now, now + lease_s, now, i) for i in ids],
            )
            self._touch_worker(db, endpoint_id, worker_id, now)
            placeholders = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({placeholders})", ids
            ).fetchall()
        by_id = {r["id"]: _row_to_job(r) for r in rows}
        jobs = [by_id[i] for i in ids]
        for job in jobs:
            self._changed(job)
        return jobs

    @_guarded
    async def take(
        self, endpoint_id: str, worker_id: str, n: int, hold: float, lease_s: float
    ) -> list[Job]:
        deadline = time.monotonic() + hold
        while True:
            jobs = self._take_now(endpoint_id, worker_id, n, lease_s)
            remaining = deadline - time.monotonic()
            if jobs or remaining <= 0:
                return jobs
            await self._notifier.wait("q:" + endpoint_id, min(remaining, FALLBACK_POLL_S))

    def _held(self, job_id: str, worker_id: str) -> Job:
        job = self._require(job_id)
        if job.worker_id != worker_id:
            raise Conflict(f"Worker {worker_id} does not hold job {job_id}.")
        return job

    @_guarded
    async def finish(self, job_id: str, worker_id: str, report: WorkerReport) -> FinishResult:
        now = self.clock.now()
        with self._tx() as db:
            job = self._held(job_id, worker_id)
            if job.status is not JobStatus.IN_PROGRESS:
                return FinishResult(job, applied=False)
            if report.status is None:
                raise ValueError("finish() needs a final report (COMPLETED or FAILED)")
            output = report.output_json
            if report.streamed:
                # A generator handler without aggregation: the chunks are the output.
                rows = db.execute(
                    "SELECT chunk FROM stream WHERE job_id = ? ORDER BY idx", (job_id,)
                ).fetchall()
                if rows:
                    output = "[" + ",".join(r[0] for r in rows) + "]"
            self._finalize(db, job_id, report.status, now, output=output, error=report.error)
        job = self._require(job_id)
        self._changed(job)
        return FinishResult(job, applied=True)

    @_guarded
    async def progress(self, job_id: str, worker_id: str, output_json: str | None) -> Job:
        now = self.clock.now()
        with self._tx() as db:
            job = self._held(job_id, worker_id)
            if job.status is JobStatus.IN_PROGRESS:
                db.execute("UPDATE jobs SET output = ? WHERE id = ?", (output_json, job_id))
                self._touch_worker(db, job.endpoint_id, worker_id, now)
        job = self._require(job_id)
        self._changed(job)
        return job

    @_guarded
    async def append_stream(
        self, job_id: str, worker_id: str, chunks: list[str], limit_bytes: int
    ) -> Appended:
        now = self.clock.now()
        size = sum(len(c.encode()) for c in chunks)
        with self._tx() as db:
            job = self._held(job_id, worker_id)
            if job.status is not JobStatus.IN_PROGRESS or not chunks:
                return Appended(job)
            start, total = db.execute(
                "SELECT stream_len, stream_bytes FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if total + size > limit_bytes:
                self._finalize(
                    db,
                    job_id,
                    JobStatus.FAILED,
                    now,
                    error=stream_limit_error(limit_bytes),
                    stop=True,
                    keep_output=True,
                )
            else:
                db.executemany(
                    "INSERT INTO stream (job_id, idx, chunk) VALUES (?, ?, ?)",
                    [(job_id, start + i, c) for i, c in enumerate(chunks)],
                )
                db.execute(
                    "UPDATE jobs SET stream_len = ?, stream_bytes = ? WHERE id = ?",
                    (start + len(chunks), total + size, job_id),
                )
                self._changed(job)
                return Appended(job)
        job = self._require(job_id)
        self._changed(job)
        return Appended(job, over_limit=True, applied=True)

    def _touch_worker(
        self,
        db: sqlite3.Connection,
        endpoint_id: str,
        worker_id: str,
        now: float,
        state: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        """Record that the worker was seen now; a new id past the endpoint's
        WORKER_RECORDS_PER_ENDPOINT pushes out the record seen least recently."""
        known = db.execute(
            "SELECT 1 FROM workers WHERE endpoint_id = ? AND worker_id = ?",
            (endpoint_id, worker_id),
        ).fetchone()
        if known is None:
            db.execute(
                """DELETE FROM workers WHERE endpoint_id = ? AND worker_id IN (
                       SELECT worker_id FROM workers WHERE endpoint_id = ?
                       ORDER BY last_seen DESC, worker_id DESC LIMIT -1 OFFSET ?)""",
                (endpoint_id, endpoint_id, WORKER_RECORDS_PER_ENDPOINT - 1),
            )
        db.execute(
            """INSERT INTO workers (endpoint_id, worker_id, last_seen, state, info)
               VALUES (?, ?, ?, COALESCE(?, 'idle'), COALESCE(?, '{}'))
               ON CONFLICT (endpoint_id, worker_id) DO UPDATE SET last_seen = excluded.last_seen,
                   state = COALESCE(?, state), info = COALESCE(?, info)""",
            (endpoint_id, worker_id, now, state, _dumps(info), state, _dumps(info)),
        )

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
        with self._tx() as db:
            if job_ids:
                placeholders = ",".join("?" * len(job_ids))
                db.execute(
                    f"""UPDATE jobs SET lease_until = ?
                        WHERE id IN ({placeholders}) AND worker_id = ? AND endpoint_id = ?
                          AND status = 'IN_PROGRESS'""",
                    [now + lease_s, *job_ids, worker_id, endpoint_id],
                )
                # A worker still running a job that was cancelled or timed out gets the
                # stop again: the first one may have been lost, or came before the
                # worker had started the job.
                db.execute(
                    f"""UPDATE jobs SET stop_pending = 1
                        WHERE id IN ({placeholders}) AND worker_id = ? AND endpoint_id = ?
                          AND status IN ('CANCELLED', 'TIMED_OUT')""",
                    [*job_ids, worker_id, endpoint_id],
                )
            self._touch_worker(db, endpoint_id, worker_id, now, state, info)

    @_guarded
    async def jobs_to_stop(self, endpoint_id: str, worker_id: str) -> list[str]:
        with self._tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    """SELECT id FROM jobs WHERE endpoint_id = ? AND worker_id = ?
                       AND stop_pending = 1""",
                    (endpoint_id, worker_id),
                )
            ]
            if ids:
                db.executemany("UPDATE jobs SET stop_pending = 0 WHERE id = ?", [(i,) for i in ids])
        return ids

    @_guarded
    async def workers(self, endpoint_id: str, alive_since: float) -> list[WorkerInfo]:
        rows = self._db.execute(
            """SELECT w.worker_id, w.last_seen, w.state, w.info,
                      (SELECT GROUP_CONCAT(j.id, ',') FROM jobs j
                         WHERE j.endpoint_id = w.endpoint_id AND j.worker_id = w.worker_id
                           AND j.status = 'IN_PROGRESS') AS held
               FROM workers w WHERE w.endpoint_id = ? AND w.last_seen >= ?""",
            (endpoint_id, alive_since),
        ).fetchall()
        out = []
        for r in rows:
            held = tuple(sorted(r["held"].split(","))) if r["held"] else ()
            out.append(
                WorkerInfo(
                    endpoint_id=endpoint_id,
                    worker_id=r["worker_id"],
                    last_seen=r["last_seen"],
                    jobs=len(held),
                    state=r["state"],
                    info=codec.loads_trusted(r["info"]),
                    job_ids=held,
                )
            )
        return out

    # --- reaper ------------------------------------------------------------------------

    @_guarded
    async def expire(self, now: float, history_ms: int = DEFAULT_LIMITS.history_ms) -> ExpireReport:
        """One transaction; each record is processed under its own savepoint, so one that
        fails is rolled back alone and failed with REAPER_QUARANTINE_ERROR."""
        report = ExpireReport()
        finished: list[str] = []
        requeued: list[str] = []
        with self._tx() as db:
            # 1. ttl ran out (queued or running)
            for row in db.execute(
                """SELECT id, status FROM jobs WHERE status IN ('IN_QUEUE', 'IN_PROGRESS')
                   AND ttl_deadline <= ?""",
                (now,),
            ).fetchall():
                self._isolated(
                    db, row[0], now, report, lambda r=row: self._expire_ttl(db, r, now, finished)
                )
            # 2. executionTimeout ran out
            for row in db.execute(
                """SELECT id, execution_timeout_ms FROM jobs WHERE status = 'IN_PROGRESS'
                   AND exec_deadline <= ?""",
                (now,),
            ).fetchall():
                self._isolated(
                    db, row[0], now, report, lambda r=row: self._expire_exec(db, r, now, finished)
                )
            # 3. lease lost: back to the queue, or FAILED past the retry limit
            for row in db.execute(
                """SELECT id, retries, retry_limit, worker_id FROM jobs
                   WHERE status = 'IN_PROGRESS' AND lease_until <= ?""",
                (now,),
            ).fetchall():
                self._isolated(
                    db,
                    row[0],
                    now,
                    report,
                    lambda r=row: self._expire_lease(db, r, now, finished, requeued),
                )
            # 4. retention ran out: delete input, output and stream; keep the job's
            #    record in the history for history_ms
            rows = db.execute(
                f"SELECT {_HISTORY_COLUMNS}, error FROM jobs WHERE purge_at <= ?", (now,)
            ).fetchall()
            purge = [r["id"] for r in rows]
            if purge:
                if history_ms > 0:
                    forget_at = now + history_ms / MS
                    db.executemany(
                        f"""INSERT OR REPLACE INTO job_history ({_HISTORY_COLUMNS}, error,
                                forget_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        [(*r[:8], cut_error(r["error"]), forget_at) for r in rows],
                    )
                db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in purge])
                db.executemany("DELETE FROM stream WHERE job_id = ?", [(i,) for i in purge])
            report.purged = len(purge)
            # 5. the history period ran out: forget the record
            db.execute("DELETE FROM job_history WHERE forget_at <= ?", (now,))
        for job_id in [*finished, *report.quarantined]:
            job = self._get(job_id)
            if job is not None:
                report.finished.append(job)
                self._changed(job)
        for job_id in requeued:
            job = self._get(job_id)
            if job is not None:
                report.requeued.append(job)
                self._notifier.notify("q:" + job.endpoint_id)
                self._changed(job)
        return report

    def _isolated(
        self,
        db: sqlite3.Connection,
        job_id: str,
        now: float,
        report: ExpireReport,
        step: Callable[[], None],
    ) -> None:
        db.execute("SAVEPOINT record")
        try:
            step()
        except Exception as exc:
            db.execute("ROLLBACK TO record")
            log.error("reaper: job %s cannot be processed (%s); failing it", job_id, exc)
            cause = f"{type(exc).__name__}: {exc}"[:300]
            db.execute(
                """UPDATE jobs SET status = 'FAILED', error = ?, finished_at = ?,
                       purge_at = ? + retention_ms / 1000.0, lease_until = NULL,
                       exec_deadline = NULL, ttl_deadline = NULL, stop_pending = 1
                   WHERE id = ?""",
                (REAPER_QUARANTINE_ERROR.format(cause=cause), now, now, job_id),
            )
            report.quarantined.append(job_id)
        finally:
            db.execute("RELEASE record")

    def _expire_ttl(
        self, db: sqlite3.Connection, row: sqlite3.Row, now: float, finished: list[str]
    ) -> None:
        job_id, status = row
        self._finalize(
            db,
            job_id,
            JobStatus.TIMED_OUT,
            now,
            error="The job's ttl ran out before it finished.",
            stop=status == JobStatus.IN_PROGRESS.value,
            keep_output=True,
        )
        finished.append(job_id)

    def _expire_exec(
        self, db: sqlite3.Connection, row: sqlite3.Row, now: float, finished: list[str]
    ) -> None:
        job_id, timeout_ms = row
        self._finalize(
            db,
            job_id,
            JobStatus.TIMED_OUT,
            now,
            error=f"The job ran longer than its executionTimeout of {timeout_ms} ms.",
            stop=True,
            keep_output=True,
        )
        finished.append(job_id)

    def _expire_lease(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        now: float,
        finished: list[str],
        requeued: list[str],
    ) -> None:
        job_id, retries, limit, worker_id = row
        if retries < limit:
            db.execute(
                """UPDATE jobs SET status = 'IN_QUEUE', retries = retries + 1,
                       worker_id = NULL, started_at = NULL, lease_until = NULL,
                       exec_deadline = NULL, output = NULL, stream_len = 0,
                       stream_read = 0, stream_bytes = 0
                   WHERE id = ?""",
                (job_id,),
            )
            db.execute("DELETE FROM stream WHERE job_id = ?", (job_id,))
            requeued.append(job_id)
            return
        self._finalize(
            db,
            job_id,
            JobStatus.FAILED,
            now,
            error=(
                f"The worker was lost (worker {worker_id} stopped sending "
                f"heartbeats) and the job was already retried {retries} times."
            ),
        )
        finished.append(job_id)

    # --- history -----------------------------------------------------------------------

    @_guarded
    async def history(self, endpoint_id: str, query: HistoryQuery) -> HistoryPage:
        """Retained jobs (table jobs) and archived records (job_history), merged in the
        order (created_at desc, id desc); each side walks its own index."""
        where = ["endpoint_id = ?"]
        params: list[Any] = [endpoint_id]
        if query.status is not None:
            where.append("status = ?")
            params.append(query.status.value)
        if query.since is not None:
            where.append("created_at >= ?")
            params.append(query.since)
        upper = query.upper()
        if upper is not None and upper[1] is None:
            where.append("created_at < ?")
            params.append(upper[0])
        elif upper is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend(upper)
        cond = " AND ".join(where)
        rows = self._db.execute(
            f"""SELECT {_HISTORY_COLUMNS}, substr(error, 1, {HISTORY_ERROR_BYTES + 1}) AS error
                    FROM jobs WHERE {cond}
                UNION ALL
                SELECT {_HISTORY_COLUMNS}, error FROM job_history WHERE {cond}
                ORDER BY created_at DESC, id DESC LIMIT ?""",
            [*params, *params, query.limit + 1],
        ).fetchall()
        jobs = [_history_job(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return HistoryPage(jobs, (jobs[-1].created_at, jobs[-1].id) if more else None)

    # --- endpoints, keys, settings -----------------------------------------------------

    @_guarded
    async def put_endpoint(self, endpoint: Endpoint) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT INTO endpoints (id, token_hash, doc) VALUES (?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
                       doc = excluded.doc""",
                (endpoint.id, endpoint.worker_token_hash, codec.dumps_text(endpoint.to_doc())),
            )

    @_guarded
    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self._db.execute("SELECT doc FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
        return None if row is None else Endpoint.from_doc(codec.loads_trusted(row[0]))

    @_guarded
    async def list_endpoints(self) -> list[Endpoint]:
        rows = self._db.execute("SELECT doc FROM endpoints ORDER BY rowid").fetchall()
        return [Endpoint.from_doc(codec.loads_trusted(r[0])) for r in rows]

    @_guarded
    async def delete_endpoint(self, endpoint_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
            db.execute(
                "DELETE FROM jobs WHERE endpoint_id = ? AND status = 'IN_QUEUE'", (endpoint_id,)
            )
            db.execute("DELETE FROM workers WHERE endpoint_id = ?", (endpoint_id,))
            self.logs.delete_endpoint(db, endpoint_id)
        self._notifier.notify("q:" + endpoint_id)
        return cur.rowcount > 0

    @_guarded
    async def endpoint_by_token_hash(self, token_hash: str) -> Endpoint | None:
        row = self._db.execute(
            "SELECT doc FROM endpoints WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else Endpoint.from_doc(codec.loads_trusted(row[0]))

    @_guarded
    async def put_key(self, key: ApiKey) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT INTO api_keys (id, hash, doc) VALUES (?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, doc = excluded.doc""",
                (key.id, key.hash, key.to_doc()),
            )

    @_guarded
    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._db.execute("SELECT doc FROM api_keys WHERE hash = ?", (key_hash,)).fetchone()
        return None if row is None else ApiKey.from_doc(row[0])

    @_guarded
    async def list_keys(self) -> list[ApiKey]:
        rows = self._db.execute("SELECT doc FROM api_keys ORDER BY rowid").fetchall()
        return [ApiKey.from_doc(r[0]) for r in rows]

    @_guarded
    async def get_setting(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    @_guarded
    async def set_setting_if_absent(self, name: str, value: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)", (name, value)
            )
        return cur.rowcount > 0

    @_guarded
    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        now = self.clock.now()
        with self._tx() as db:
            cur = db.execute(
                """INSERT INTO locks (name, owner, until) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                       until = excluded.until
                   WHERE locks.owner = excluded.owner OR locks.until <= ?""",
                (name, owner, now + lease_s, now),
            )
        return cur.rowcount > 0
