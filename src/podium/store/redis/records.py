"""The Redis store's key layout, scripts and record conversions (its roles share them;
store.py draws the key layout)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from podium import codec
from podium.jobs import (
    WORKER_RECORDS_PER_ENDPOINT,
    Job,
    JobStatus,
)

__all__ = ["PRELUDE", "SCRIPTS", "lua"]

log = logging.getLogger("podium.store.redis")

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

_LUA_DIR = Path(__file__).parents[1] / "lua"


def lua(name: str) -> str:
    return (_LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


# Facts of podium.jobs the scripts need, as Lua constants ahead of the prelude.
PRELUDE = f"local WORKER_RECORDS = {WORKER_RECORDS_PER_ENDPOINT}\n" + lua("prelude")

# The scripts of store/lua/<name>.lua, each run after the prelude.
SCRIPTS = (
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
    "delete_doc",
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
        status=JobStatus(cast(str, status)),  # the script skips rows without a status
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


# Take the lock, or renew it when this owner holds it. The lease runs on the injected
# clock (ARGV now) like everything else; the key TTL (real time) only cleans up.
HOLD_LOCK = lua("hold_lock")
