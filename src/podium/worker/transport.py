"""HTTP to the gateway, from the event loop: take jobs, poll the stop channel, post.

Posts (results, stream chunks, progress) retry on network errors, 408, 429 and 5xx with
exponential backoff and jitter until the gateway acknowledges them (2xx) or the deadline
passes; any other 4xx is final (400 malformed, 404 unknown job, 409 the job is no longer
this worker's). The RunPod SDK tries a result three times and then drops it.

Headers match the SDK's (`rp_http._transmit`): the raw JSON body labelled
`application/x-www-form-urlencoded`, a literal `charset: utf-8` header and `X-Request-ID`.

Requests go straight to an `httpx.AsyncHTTPTransport` (one keep-alive pool), not through
`httpx.AsyncClient`: the client's layers (auth, redirects, cookies, event hooks, URL
merging) cost about a third of a request's CPU and the worker needs none of them
(docs/benchmarks.md, "Worker runtime").

A result post may carry the worker's next jobs (`take_next`, the `podium_next` extension):
the gateway answers the post with them, so a busy worker makes one request per job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from podium.errors import GatewayRefused, Throttled
from podium.worker.backoff import Backoff
from podium.worker.config import WorkerConfig

__all__ = [
    "Delivery",
    "GatewayRefused",
    "Posted",
    "Throttled",
    "Transport",
    "is_retryable",
]

log = logging.getLogger("podium.worker")

POST_HEADERS = [("Content-Type", "application/x-www-form-urlencoded"), ("charset", "utf-8")]
PROGRESS_DEADLINE_S = 30.0  # progress is superseded by the next one or by the result
LONG_POLL_GRACE_S = 15.0  # client-side slack over the hold the gateway was asked for


class Delivery(StrEnum):
    ACKED = "acknowledged"
    REJECTED = "rejected"  # a final 4xx
    GAVE_UP = "gave up"  # deadline passed
    ABANDONED = "abandoned"  # the job was stopped meanwhile


@dataclass(frozen=True, slots=True)
class Posted:
    """How a post ended, and the jobs its answer carried (the `podium_next` extension)."""

    delivery: Delivery
    jobs: list[Any] = field(default_factory=list)


def is_retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def _error_message(response: httpx.Response) -> str:
    """The gateway's `{"error": ...}` message (it names ids and limits, never job data)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error[:500]
    return response.reason_phrase


def _timeout(read: float) -> dict[str, float]:
    return {"connect": 10.0, "read": read, "write": 60.0, "pool": 10.0}


POST_TIMEOUT = _timeout(60.0)


class Transport:
    def __init__(
        self,
        config: WorkerConfig,
        http: httpx.AsyncBaseTransport,
        backoff: Backoff | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.http = http
        self.backoff = backoff or Backoff()
        self._monotonic = monotonic  # injectable: tests drive the deadline, not the wall
        self._sleep = sleep
        self._warned: set[str] = set()
        self._auth = [("Authorization", config.token)] if config.token else []

    async def _send(
        self,
        method: str,
        url: str,
        timeout: dict[str, float],
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        """One request on the keep-alive pool; the answer is read in full."""
        request = httpx.Request(
            method,
            url,
            headers=[*self._auth, *(headers or [])],
            content=body if method == "POST" else None,
            extensions={"timeout": timeout},
        )
        response = await self.http.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        response.request = request
        return response

    def _long_poll_timeout(self, hold_s: float | None) -> dict[str, float]:
        read = self.config.take_timeout_s if hold_s is None else hold_s + LONG_POLL_GRACE_S
        return _timeout(read)

    def _check_refused(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 403, 404):
            raise GatewayRefused(
                f"The gateway refused {what} ({response.status_code}): {_error_message(response)}"
            )
        if response.status_code == 429:
            raise Throttled(_retry_after(response, 5.0))

    # --- jobs in ------------------------------------------------------------------------

    async def take(self, n: int, in_progress: bool, hold_s: float | None) -> list[Any]:
        """Up to `n` job objects ([] when none came during the hold)."""
        url = self.config.take_request_url(n, in_progress, hold_s)
        response = await self._send("GET", url, self._long_poll_timeout(hold_s))
        if response.status_code in (204, 400):  # 400 also means "no job" to the SDK
            message = _error_message(response) if response.status_code == 400 else ""
            if message and message not in self._warned:  # e.g. batch_size over the limit
                self._warned.add(message)
                log.warning("job-take answered 400 (read as no job): %s", message)
            return []
        self._check_refused(response, "job-take")
        response.raise_for_status()
        try:
            body = response.json()
        except ValueError:
            log.warning("job-take answered %d with a body that is not JSON", response.status_code)
            return []
        if isinstance(body, dict):
            return [body]
        if isinstance(body, list):
            return body
        log.warning("job-take answered a JSON %s; expected an object", type(body).__name__)
        return []

    async def poll_stop(self, url: str) -> list[str]:
        """Ids of this worker's jobs that were cancelled or timed out ([] when none)."""
        response = await self._send("GET", url, self._long_poll_timeout(None))
        if response.status_code == 204:
            return []
        self._check_refused(response, "job-stop")
        response.raise_for_status()
        try:
            body = response.json()
        except ValueError:
            return []
        ids = body.get("jobsToStop", []) if isinstance(body, dict) else []
        return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []

    # --- results out --------------------------------------------------------------------

    async def post_result(
        self,
        job_id: str,
        body: bytes,
        is_stream: bool,
        abandoned: Callable[[], bool],
        take_next: int = 0,
    ) -> Posted:
        """Post a job's result; with `take_next`, the answer may bring up to that many
        jobs for this worker (already IN_PROGRESS and this worker's: run them)."""
        url = self.config.done_request_url(job_id, is_stream, take_next)
        delivery, response = await self._deliver(
            url, body, job_id, self.config.result_deadline_s, abandoned, "result"
        )
        if not take_next or response is None or delivery is not Delivery.ACKED:
            return Posted(delivery)
        try:
            answer = response.json()
        except ValueError:
            return Posted(delivery)
        jobs = answer.get("next") if isinstance(answer, dict) else None
        return Posted(delivery, jobs if isinstance(jobs, list) else [])

    async def post_chunk(self, job_id: str, body: bytes, abandoned: Callable[[], bool]) -> Delivery:
        url = self.config.stream_request_url(job_id)
        return await self.deliver(
            url, body, job_id, self.config.result_deadline_s, abandoned, what="stream chunk"
        )

    async def post_progress(self, job_id: str, body: bytes, abandoned: Callable[[], bool]) -> None:
        url = self.config.done_request_url(job_id, is_stream=False)
        deadline = min(PROGRESS_DEADLINE_S, self.config.result_deadline_s)
        await self.deliver(url, body, job_id, deadline, abandoned, what="progress")

    async def deliver(
        self,
        url: str,
        body: bytes,
        job_id: str,
        deadline_s: float,
        abandoned: Callable[[], bool],
        what: str = "result",
    ) -> Delivery:
        """POST until acknowledged (2xx), refused (final 4xx), abandoned, or out of time."""
        delivery, _ = await self._deliver(url, body, job_id, deadline_s, abandoned, what)
        return delivery

    async def _deliver(
        self,
        url: str,
        body: bytes,
        job_id: str,
        deadline_s: float,
        abandoned: Callable[[], bool],
        what: str,
    ) -> tuple[Delivery, httpx.Response | None]:
        started = self._monotonic()
        headers = [*POST_HEADERS, ("X-Request-ID", job_id)]
        attempt = 0
        while True:
            try:
                response = await self._send("POST", url, POST_TIMEOUT, body, headers)
            except httpx.TransportError as exc:
                problem, wait = type(exc).__name__, self.backoff.delay(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    if attempt:
                        log.info("job %s: %s delivered after %d retries", job_id, what, attempt)
                    return Delivery.ACKED, response
                if not is_retryable(status):
                    log.error(
                        "job %s: the gateway refused the %s (%d): %s",
                        job_id,
                        what,
                        status,
                        _error_message(response),
                    )
                    return Delivery.REJECTED, response
                problem = f"HTTP {status}"
                wait = self.backoff.delay(attempt)
                if status == 429:
                    wait = max(wait, _retry_after(response, wait))
            if abandoned():
                return Delivery.ABANDONED, None
            elapsed = self._monotonic() - started
            if elapsed + wait > deadline_s:
                log.error(
                    "job %s: giving up on the %s after %d attempts in %.0f s (%s)",
                    job_id,
                    what,
                    attempt + 1,
                    elapsed,
                    problem,
                )
                return Delivery.GAVE_UP, None
            if attempt == 0:
                log.warning(
                    "job %s: posting the %s failed (%s); retrying for up to %.0f s",
                    job_id,
                    what,
                    problem,
                    deadline_s,
                )
            await self._sleep(wait)
            attempt += 1
