"""The queue and the jobs on SQLite (store.base.JobQueue and JobHistory): every
transition one guarded statement in one transaction; waiting on the in-process Notifier
with a short fallback poll."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from podium.errors import Conflict, NotFound
from podium.history import HISTORY_ERROR_BYTES, HistoryPage, HistoryQuery, cut_error
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
from podium.store.sqlite.db import Connected, guarded
from podium.store.sqlite.schema import (
    FALLBACK_POLL_S,
    HISTORY_COLUMNS,
    JOB_COLUMNS,
    STOP_KEY,
    history_job,
    row_to_job,
)
from podium.store.sqlite.workers import touch_worker

__all__ = ["SQLiteJobs"]

log = logging.getLogger("podium.store.sqlite")


class SQLiteJobs(Connected):
    # submissions waiting for the next group commit (set in SQLiteStore.__init__)
    _pending_submits: list[tuple[Job, int, asyncio.Future[None]]]

    def _get(self, job_id: str) -> Job | None:
        row = self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row_to_job(row)

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
        if stop:
            self._notifier.notify(STOP_KEY)
        db.execute(
            f"""UPDATE jobs SET status = ?, finished_at = ?, error = ?, output = {out_sql},
                   purge_at = ? + retention_ms / 1000.0, lease_until = NULL,
                   exec_deadline = NULL, ttl_deadline = NULL, stop_pending = ?
               WHERE id = ?""",
            params,
        )

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

    @guarded
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

    @guarded
    async def get(self, job_id: str) -> Job | None:
        return self._get(job_id)

    @guarded
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

    @guarded
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

    @guarded
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

    @guarded
    async def set_retention(self, job_id: str, retention_ms: int) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE jobs SET retention_ms = ?,
                       purge_at = CASE WHEN finished_at IS NULL THEN NULL
                           ELSE finished_at + ? / 1000.0 END
                   WHERE id = ?""",
                (retention_ms, retention_ms, job_id),
            )

    @guarded
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

    @guarded
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

    @guarded
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
                touch_worker(db, endpoint_id, worker_id, now)
                return []
            db.executemany(
                """UPDATE jobs SET status = 'IN_PROGRESS', worker_id = ?, started_at = ?,
                       lease_until = ?, exec_deadline = ? + execution_timeout_ms / 1000.0
                   WHERE id = ? AND status = 'IN_QUEUE'""",
                [(worker_id, now, now + lease_s, now, i) for i in ids],
            )
            touch_worker(db, endpoint_id, worker_id, now)
            placeholders = ",".join("?" * len(ids))
            rows = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({placeholders})", ids
            ).fetchall()
        by_id = {r["id"]: row_to_job(r) for r in rows}
        jobs = [by_id[i] for i in ids]
        for job in jobs:
            self._changed(job)
        return jobs

    @guarded
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

    @guarded
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

    @guarded
    async def progress(self, job_id: str, worker_id: str, output_json: str | None) -> Job:
        now = self.clock.now()
        with self._tx() as db:
            job = self._held(job_id, worker_id)
            if job.status is JobStatus.IN_PROGRESS:
                db.execute("UPDATE jobs SET output = ? WHERE id = ?", (output_json, job_id))
                touch_worker(db, job.endpoint_id, worker_id, now)
        job = self._require(job_id)
        self._changed(job)
        return job

    @guarded
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

    @guarded
    async def jobs_to_stop(self, endpoint_id: str, worker_id: str, hold: float = 0.0) -> list[str]:
        deadline = time.monotonic() + hold
        while True:
            ids = self._stops_now(endpoint_id, worker_id)
            remaining = deadline - time.monotonic()
            if ids or remaining <= 0:
                return ids
            await self._notifier.wait(STOP_KEY, min(remaining, FALLBACK_POLL_S))

    def _stops_now(self, endpoint_id: str, worker_id: str) -> list[str]:
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

    # --- reaper ------------------------------------------------------------------------

    @guarded
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
                step = functools.partial(self._expire_ttl, db, row, now, finished)
                self._isolated(db, row[0], now, report, step)
            # 2. executionTimeout ran out
            for row in db.execute(
                """SELECT id, execution_timeout_ms FROM jobs WHERE status = 'IN_PROGRESS'
                   AND exec_deadline <= ?""",
                (now,),
            ).fetchall():
                step = functools.partial(self._expire_exec, db, row, now, finished)
                self._isolated(db, row[0], now, report, step)
            # 3. lease lost: back to the queue, or FAILED past the retry limit
            for row in db.execute(
                """SELECT id, retries, retry_limit, worker_id FROM jobs
                   WHERE status = 'IN_PROGRESS' AND lease_until <= ?""",
                (now,),
            ).fetchall():
                step = functools.partial(self._expire_lease, db, row, now, finished, requeued)
                self._isolated(db, row[0], now, report, step)
            # 4. retention ran out: delete input, output and stream; keep the job's
            #    record in the history for history_ms
            rows = db.execute(
                f"SELECT {HISTORY_COLUMNS}, error FROM jobs WHERE purge_at <= ?", (now,)
            ).fetchall()
            purge = [r["id"] for r in rows]
            if purge:
                if history_ms > 0:
                    forget_at = now + history_ms / MS
                    db.executemany(
                        f"""INSERT OR REPLACE INTO job_history ({HISTORY_COLUMNS}, error,
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
            self._notifier.notify(STOP_KEY)
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

    @guarded
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
            f"""SELECT {HISTORY_COLUMNS}, substr(error, 1, {HISTORY_ERROR_BYTES + 1}) AS error
                    FROM jobs WHERE {cond}
                UNION ALL
                SELECT {HISTORY_COLUMNS}, error FROM job_history WHERE {cond}
                ORDER BY created_at DESC, id DESC LIMIT ?""",
            [*params, *params, query.limit + 1],
        ).fetchall()
        jobs = [history_job(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return HistoryPage(jobs, (jobs[-1].created_at, jobs[-1].id) if more else None)
