"""Job history: the paginated list of an endpoint's jobs (`GET /v2/{ep}/requests`). Pure.

Every job is listed from submit on, newest first (by `createdAt`, then id), whether its
data is still retained or not: when retention deletes a finished job's input, output and
stream, the store keeps a small record of it (status, times, worker, retries and the
first HISTORY_ERROR_BYTES of its error) for the history period (`PODIUM_HISTORY_MS`,
default 24 h). A list entry never carries an input or an output.

Pages are cut by an opaque cursor (the last entry's createdAt and id), so a page stays
right while jobs are submitted and finish: each store answers from an index ordered by
(createdAt, id) and never counts an offset.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podium.clock import iso_time, parse_time
from podium.codec import ascii_digits
from podium.errors import BadRequest
from podium.jobs import DEFAULT_LIMITS, Job, JobStatus, Limits, status_object

__all__ = [
    "HISTORY_ERROR_BYTES",
    "HistoryPage",
    "HistoryQuery",
    "cut_error",
    "decode_cursor",
    "encode_cursor",
    "history_entry",
    "parse_history_query",
]

# How much of a job's error the history keeps and lists. A worker may post an error of
# up to 20 MB (a traceback, a repr of a big object); the list shows its beginning, and
# /status the whole of it while the job is retained.
HISTORY_ERROR_BYTES = 4096
ELLIPSIS = "…"

Key = tuple[float, str]  # (created_at, id): the order of the list


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """One page: jobs with `since` <= createdAt < `until`, of `status` (None: any),
    strictly after `after` in the order (createdAt desc, id desc), at most `limit`."""

    status: JobStatus | None = None
    since: float | None = None
    until: float | None = None
    after: Key | None = None
    limit: int = 20

    def upper(self) -> tuple[float, str | None] | None:
        """The page's upper bound as (createdAt, id): entries strictly below it in the
        order. id None: every entry of that createdAt is excluded too (from `until`)."""
        if self.after is None:
            return None if self.until is None else (self.until, None)
        if self.until is not None and self.until <= self.after[0]:
            return (self.until, None)
        return self.after


@dataclass(slots=True)
class HistoryPage:
    jobs: list[Job]  # slim records: no input, output or stream
    next: Key | None  # the cursor of the next page; None: this was the last


def cut_error(text: str | None, limit: int = HISTORY_ERROR_BYTES) -> str | None:
    """An error of at most `limit` bytes in UTF-8: unchanged when it fits, else its
    beginning (never splitting a character) and an ellipsis. Cutting twice changes
    nothing. The Redis store's Lua does the same, byte for byte."""
    if text is None:
        return None
    raw = text.encode()
    if len(raw) <= limit:
        return text
    end = limit - len(ELLIPSIS.encode())
    while end > 0 and 0x80 <= raw[end] < 0xC0:  # a continuation byte: back to its start
        end -= 1
    return raw[:end].decode() + ELLIPSIS


def encode_cursor(key: Key) -> str:
    created_at, job_id = key
    return base64.urlsafe_b64encode(f"{created_at!r}|{job_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    """BadRequest for anything that is not a cursor this module made."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        stamp, job_id = raw.split("|", 1)
        created_at = float(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "`cursor` is not a cursor of this list; pass the `nextCursor` of the page before."
        ) from None
    if not math.isfinite(created_at) or not job_id or len(job_id) > 200:
        raise BadRequest(
            "`cursor` is not a cursor of this list; pass the `nextCursor` of the page before."
        )
    return created_at, job_id


def _limit(raw: str | None, limits: Limits) -> int:
    if raw is None or raw == "":
        return limits.history_page_default
    if not ascii_digits(raw) or len(raw) > 9 or not 1 <= int(raw) <= limits.history_page_max:
        raise BadRequest(
            f"`limit` must be a whole number between 1 and {limits.history_page_max}, "
            f"got {raw[:40]!r}."
        )
    return int(raw)


def _status(raw: str | None) -> JobStatus | None:
    if raw is None or raw == "":
        return None
    try:
        return JobStatus(raw.upper())
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise BadRequest(f"`status` must be one of {names}, got {raw[:40]!r}.") from None


def parse_history_query(params: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> HistoryQuery:
    """The query string of `GET /requests`: status, since, until (ISO 8601 or epoch
    milliseconds), limit, cursor."""
    since = parse_time(params["since"], "since") if params.get("since") else None
    until = parse_time(params["until"], "until") if params.get("until") else None
    if since is not None and until is not None and until <= since:
        raise BadRequest("`until` must be later than `since`.")
    cursor = params.get("cursor")
    return HistoryQuery(
        status=_status(params.get("status")),
        since=since,
        until=until,
        after=decode_cursor(cursor) if cursor else None,
        limit=_limit(params.get("limit"), limits),
    )


def history_entry(job: Job, now: float) -> dict[str, Any]:
    """One list entry: id, status, createdAt (ISO 8601), delayTime, executionTime,
    workerId, retries, error — the status object's fields, never input or output."""
    obj = status_object(job, now)
    obj.pop("output", None)
    return {
        "id": obj.pop("id"),
        "status": obj.pop("status"),
        "createdAt": iso_time(job.created_at),
    } | obj
