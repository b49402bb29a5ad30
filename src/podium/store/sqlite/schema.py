"""The SQLite file's tables and the rows they hold (SQLiteStore's roles share them)."""

from __future__ import annotations

import sqlite3
from typing import Any

from podium import codec
from podium.history import cut_error
from podium.jobs import (
    Job,
    JobStatus,
)

__all__ = [
    "DROPPED_INDEXES",
    "FALLBACK_POLL_S",
    "FILE_MODE",
    "HISTORY_COLUMNS",
    "JOB_COLUMNS",
    "MIGRATIONS",
    "SCHEMA",
    "STOP_KEY",
    "SYNC_MODES",
    "dumps",
    "history_job",
    "row_to_job",
]

FALLBACK_POLL_S = 1.0
# The Notifier key a posted stop wakes (stops are rare: one key for every worker's
# stop channel, each waiter checks its own).
STOP_KEY = "stop"
SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id),
    UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL
);
"""

JOB_COLUMNS = (
    "id, endpoint_id, status, input, webhook, execution_timeout_ms, ttl_ms, low_priority, "
    "retention_ms, created_at, started_at, finished_at, worker_id, output, error, retries, "
    "lease_until, stream_read, s3_config"
)
# What the history lists of a retained job (its error cut as HISTORY_ERROR_BYTES allows).
HISTORY_COLUMNS = "id, endpoint_id, status, created_at, started_at, finished_at, worker_id, retries"


# Columns added after the first release: (name, definition), added on open when missing.
MIGRATIONS = (
    ("jobs", "stream_bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "s3_config", "TEXT"),
)
# Indexes that later ones made redundant: dropped on open.
DROPPED_INDEXES = ("jobs_endpoint_status",)
FILE_MODE = 0o600


def dumps(value: Any) -> str | None:
    """Podium's own small records (worker info): never user JSON, which arrives as text."""
    return None if value is None else codec.dumps_text(value)


def row_to_job(row: sqlite3.Row) -> Job:
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


def history_job(row: sqlite3.Row) -> Job:
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
