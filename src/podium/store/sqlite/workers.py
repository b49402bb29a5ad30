"""The worker registry on SQLite (store.base.WorkerRegistry): one row per worker id an
endpoint's workers used (a ping or a poll), at most WORKER_RECORDS_PER_ENDPOINT."""

from __future__ import annotations

import sqlite3
from typing import Any

from podium import codec
from podium.board import WorkerInfo
from podium.jobs import (
    WORKER_RECORDS_PER_ENDPOINT,
)
from podium.store.sqlite.db import Connected, guarded
from podium.store.sqlite.schema import STOP_KEY, dumps

__all__ = ["SQLiteWorkers", "touch_worker"]


def touch_worker(
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
        (endpoint_id, worker_id, now, state, dumps(info), state, dumps(info)),
    )


class SQLiteWorkers(Connected):
    @guarded
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
                rearmed = db.execute(
                    f"""UPDATE jobs SET stop_pending = 1
                        WHERE id IN ({placeholders}) AND worker_id = ? AND endpoint_id = ?
                          AND status IN ('CANCELLED', 'TIMED_OUT')""",
                    [*job_ids, worker_id, endpoint_id],
                )
                if rearmed.rowcount:
                    self._notifier.notify(STOP_KEY)
            touch_worker(db, endpoint_id, worker_id, now, state, info)

    @guarded
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
