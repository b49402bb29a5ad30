"""Worker logs in the SQLite file (store.base.WorkerLogs), on the store's connection
(its transaction and error guard: db.py).

    worker_logs       one row per line; `seq` (INTEGER PRIMARY KEY AUTOINCREMENT) is the
                      store-wide counter and cursor; `jobs` is a JSON array of job ids
    worker_log_jobs   (job id, seq) for each job of each line: a job's lines by index;
                      its rows go with their line (ON DELETE CASCADE)
    log_writers       (endpoint, worker) -> when the store last took a line (expiry),
                      the seq of that line (least recently written first), and what
                      its kept lines cost (`bytes`, kept by the triggers below on every
                      insert and delete: logs.lines.line_cost)

Statements run on the event loop's thread like the rest of SQLiteStore: an append is
one transaction over a handful of indexed rows, and the endpoint's budget
(logs.lines.LogBudget) is enforced in it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from podium.logs.lines import (
    BYTES_LOW_WATER,
    LINE_COST_OVERHEAD,
    LogBudget,
    LogLine,
    LogQuery,
    StoredLine,
)
from podium.store.base import LogPage
from podium.store.sqlite.db import Role, guarded

__all__ = ["SQLiteWorkerLogs"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS worker_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    at REAL NOT NULL,
    text TEXT NOT NULL,
    jobs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS worker_logs_worker ON worker_logs (endpoint_id, worker_id, seq);
CREATE INDEX IF NOT EXISTS worker_logs_endpoint ON worker_logs (endpoint_id, seq);
CREATE TABLE IF NOT EXISTS worker_log_jobs (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES worker_logs (seq) ON DELETE CASCADE,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS worker_log_jobs_seq ON worker_log_jobs (seq);
CREATE TABLE IF NOT EXISTS log_writers (
    endpoint_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    last_at REAL NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, worker_id)
);
CREATE INDEX IF NOT EXISTS log_writers_last ON log_writers (last_at);
"""
# What a line costs (logs.lines.line_cost), as SQL over a worker_logs row.
_COST = (
    f"(length(CAST({{r}}.text AS BLOB)) + length(CAST({{r}}.jobs AS BLOB)) + {LINE_COST_OVERHEAD})"
)
_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS worker_logs_cost_in AFTER INSERT ON worker_logs BEGIN
    UPDATE log_writers SET bytes = bytes + {_COST.format(r="NEW")}
    WHERE endpoint_id = NEW.endpoint_id AND worker_id = NEW.worker_id;
END;
CREATE TRIGGER IF NOT EXISTS worker_logs_cost_out AFTER DELETE ON worker_logs BEGIN
    UPDATE log_writers SET bytes = bytes - {_COST.format(r="OLD")}
    WHERE endpoint_id = OLD.endpoint_id AND worker_id = OLD.worker_id;
END;
"""
# Columns log_writers gained after its first release: (column, definition, backfill).
_MIGRATIONS = (
    ("last_seq", "INTEGER NOT NULL DEFAULT 0", "SELECT MAX(seq)"),
    ("bytes", "INTEGER NOT NULL DEFAULT 0", f"SELECT SUM({_COST.format(r='l')})"),
)


def _line(row: sqlite3.Row) -> StoredLine:
    return StoredLine(
        seq=row["seq"],
        worker_id=row["worker_id"],
        at=row["at"],
        text=row["text"],
        jobs=tuple(json.loads(row["jobs"])),
    )


class SQLiteWorkerLogs(Role):
    def _setup(self) -> None:
        db = self._db
        have = {r[1] for r in db.execute("PRAGMA table_info(log_writers)")}
        db.executescript(_SCHEMA)
        for column, definition, value in _MIGRATIONS if have else ():
            if column not in have:
                db.execute(f"ALTER TABLE log_writers ADD COLUMN {column} {definition}")
                db.execute(
                    f"""UPDATE log_writers SET {column} = COALESCE(({value} FROM worker_logs l
                        WHERE l.endpoint_id = log_writers.endpoint_id
                          AND l.worker_id = log_writers.worker_id), 0)"""
                )
        db.executescript(_TRIGGERS)

    def _top(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'worker_logs'")
        found = row.fetchone()
        return int(found[0]) if found else 0

    @guarded
    async def append(
        self, endpoint_id: str, worker_id: str, lines: list[LogLine], budget: LogBudget
    ) -> int:
        if not lines:
            return self._top()
        with self._tx() as db:
            # the writer's row first: the insert trigger adds each line's cost to it
            db.execute(
                """INSERT INTO log_writers (endpoint_id, worker_id, last_at) VALUES (?, ?, ?)
                   ON CONFLICT (endpoint_id, worker_id) DO UPDATE SET last_at = excluded.last_at""",
                (endpoint_id, worker_id, self.clock.now()),
            )
            first = self._top() + 1
            db.executemany(
                """INSERT INTO worker_logs (endpoint_id, worker_id, at, text, jobs)
                   VALUES (?, ?, ?, ?, ?)""",
                [(endpoint_id, worker_id, ln.at, ln.text, json.dumps(ln.jobs)) for ln in lines],
            )
            # AUTOINCREMENT inside one transaction: the lines took first .. first + n - 1
            db.executemany(
                "INSERT OR IGNORE INTO worker_log_jobs (job_id, seq) VALUES (?, ?)",
                [(job, first + i) for i, ln in enumerate(lines) for job in ln.jobs],
            )
            db.execute(
                """DELETE FROM worker_logs WHERE endpoint_id = ? AND worker_id = ? AND seq <= (
                       SELECT seq FROM worker_logs WHERE endpoint_id = ? AND worker_id = ?
                       ORDER BY seq DESC LIMIT 1 OFFSET ?)""",
                (endpoint_id, worker_id, endpoint_id, worker_id, max(budget.lines_per_worker, 0)),
            )
            top = self._top()
            db.execute(
                "UPDATE log_writers SET last_seq = ? WHERE endpoint_id = ? AND worker_id = ?",
                (top, endpoint_id, worker_id),
            )
            self._enforce(db, endpoint_id, worker_id, budget)
            return top

    def _enforce(
        self, db: sqlite3.Connection, endpoint_id: str, worker_id: str, budget: LogBudget
    ) -> None:
        """The endpoint's budget (logs.lines.LogBudget): past its workers, the logs of the
        workers that wrote least recently go (never the writer's own); past its bytes,
        its oldest lines (any worker's) go, down to BYTES_LOW_WATER of the budget."""
        writers = db.execute(
            """SELECT worker_id, bytes FROM log_writers WHERE endpoint_id = ?
               ORDER BY last_seq, worker_id""",
            (endpoint_id,),
        ).fetchall()
        total = sum(r["bytes"] for r in writers)
        over = len(writers) - budget.workers_per_endpoint
        for r in [r for r in writers if r["worker_id"] != worker_id][: max(over, 0)]:
            self._forget(db, endpoint_id, r["worker_id"])
            total -= r["bytes"]
        if total <= budget.bytes_per_endpoint:
            return
        goal, freed, cut = total - int(budget.bytes_per_endpoint * BYTES_LOW_WATER), 0, -1
        while freed < goal:  # the oldest lines, a chunk at a time
            rows = db.execute(
                f"""SELECT seq, {_COST.format(r="l")} AS cost FROM worker_logs l
                    WHERE endpoint_id = ? AND seq > ? ORDER BY seq LIMIT 1000""",
                (endpoint_id, cut),
            ).fetchall()
            for row in rows:
                freed, cut = freed + row["cost"], row["seq"]
                if freed >= goal:
                    break
            if len(rows) < 1000:
                break
        db.execute("DELETE FROM worker_logs WHERE endpoint_id = ? AND seq <= ?", (endpoint_id, cut))
        db.execute(  # the writers left without a line (not the one writing now)
            "DELETE FROM log_writers WHERE endpoint_id = ? AND bytes <= 0 AND worker_id != ?",
            (endpoint_id, worker_id),
        )

    @staticmethod
    def _forget(db: sqlite3.Connection, endpoint_id: str, worker_id: str) -> None:
        db.execute(
            "DELETE FROM worker_logs WHERE endpoint_id = ? AND worker_id = ?",
            (endpoint_id, worker_id),
        )
        db.execute(
            "DELETE FROM log_writers WHERE endpoint_id = ? AND worker_id = ?",
            (endpoint_id, worker_id),
        )

    @guarded
    async def read(self, endpoint_id: str, query: LogQuery) -> LogPage:
        top = self._top()
        where = ["l.endpoint_id = ?", "l.seq <= ?"]
        params: list[Any] = [endpoint_id, top]
        source, key = "worker_logs l", "l.seq"
        if query.job is not None:
            # Walk the job's index, not the endpoint's lines: CROSS JOIN keeps SQLite
            # from choosing the endpoint's index for the ORDER BY instead.
            source = "worker_log_jobs j CROSS JOIN worker_logs l ON l.seq = j.seq"
            key = "j.seq"
            where.append("j.job_id = ?")
            params.append(query.job)
        if query.worker is not None:
            where.append("l.worker_id = ?")
            params.append(query.worker)
        if query.since is not None:
            where.append("l.seq > ?")
            params.append(query.since)
        order = "ASC" if query.since is not None else "DESC"
        rows = self._db.execute(
            f"""SELECT l.seq, l.worker_id, l.at, l.text, l.jobs FROM {source}
                WHERE {" AND ".join(where)} ORDER BY {key} {order} LIMIT ?""",
            [*params, query.tail],
        ).fetchall()
        lines = [ln for ln in map(_line, rows) if query.matches(ln)]
        if query.since is None:
            lines.reverse()
            return LogPage(lines, top)
        full = len(rows) >= query.tail > 0
        return LogPage(lines, rows[-1]["seq"] if full else top)

    @guarded
    async def expire(self, before: float) -> int:
        with self._tx() as db:
            gone = db.execute(
                "SELECT endpoint_id, worker_id FROM log_writers WHERE last_at < ?", (before,)
            ).fetchall()
            for ep, worker in gone:
                self._forget(db, ep, worker)
        return len(gone)

    def delete_endpoint(self, db: sqlite3.Connection, endpoint_id: str) -> None:
        """Inside SQLiteStore.delete_endpoint's transaction."""
        db.execute("DELETE FROM worker_logs WHERE endpoint_id = ?", (endpoint_id,))
        db.execute("DELETE FROM log_writers WHERE endpoint_id = ?", (endpoint_id,))
