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
busy timeout, a damaged file) is StoreUnavailable, naming the cause (db.guarded).

One connection, the store's roles (store.base) each in its module:

    jobs.py      the queue and the jobs (JobQueue, JobHistory)
    workers.py   the worker registry (WorkerRegistry)
    catalog.py   endpoints, keys, templates, settings (Catalog)
    locks.py     the store lock (Locks)
    logs.py      worker logs (WorkerLogs: `store.logs`)
    metrics.py   metrics buckets (EndpointMetrics: `store.metrics`)
    schema.py    the tables; db.py the transaction and the error guard they all use
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

from podium.clock import Clock
from podium.jobs import (
    Job,
)
from podium.store.notify import Notifier
from podium.store.sqlite.catalog import SQLiteCatalog
from podium.store.sqlite.db import guarded
from podium.store.sqlite.jobs import SQLiteJobs
from podium.store.sqlite.locks import SQLiteLocks
from podium.store.sqlite.logs import SQLiteWorkerLogs
from podium.store.sqlite.metrics import SQLiteEndpointMetrics
from podium.store.sqlite.schema import DROPPED_INDEXES, FILE_MODE, MIGRATIONS, SCHEMA, SYNC_MODES
from podium.store.sqlite.workers import SQLiteWorkers

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLiteJobs, SQLiteWorkers, SQLiteCatalog, SQLiteLocks):
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
            self.metrics = SQLiteEndpointMetrics(self._db, clock, self._unavailable)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        self._own_files()  # -wal and -shm exist now
        self._notifier = Notifier()
        self._pending_submits: list[tuple[Job, int, asyncio.Future[None]]] = []

    def _own_files(self) -> None:
        """The database file and its -wal / -shm: 0600, whatever the umask. The file is
        created here, before SQLite opens it; SQLite gives -wal and -shm its mode."""
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", FILE_MODE)

    def _setup(self, sync: str) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        for table, column, definition in MIGRATIONS:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if have and column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        self._db.executescript(SCHEMA)
        for index in DROPPED_INDEXES:
            self._db.execute(f"DROP INDEX IF EXISTS {index}")

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        self._db.close()

    @guarded
    async def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    # --- across the roles ---------------------------------------------------------------

    @guarded
    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete the endpoint, its queued jobs, its workers' records, their logs and its
        metrics."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
            db.execute(
                "DELETE FROM jobs WHERE endpoint_id = ? AND status = 'IN_QUEUE'", (endpoint_id,)
            )
            db.execute("DELETE FROM workers WHERE endpoint_id = ?", (endpoint_id,))
            self.logs.delete_endpoint(db, endpoint_id)
            self.metrics.delete_endpoint(db, endpoint_id)
        self._notifier.notify("q:" + endpoint_id)
        return cur.rowcount > 0
