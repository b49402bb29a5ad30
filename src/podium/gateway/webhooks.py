"""Webhook delivery: signed, retried with exponential backoff, never on a request's path."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

import httpx

from podium import codec
from podium.net import resolve_public

__all__ = ["WebhookSender", "sign"]

log = logging.getLogger("podium.webhooks")
SIGNATURE_HEADER = "X-Podium-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self,
        *,
        allow_private: bool,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        """`on_outcome(endpoint_id, outcome)`: each delivery's end, delivered | failed |
        refused (the metrics count them)."""
        self._allow_private = allow_private
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._on_outcome = on_outcome
        self._queue: asyncio.Queue[tuple[str, bytes, str, str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._runner:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *self._tasks, *(t for t in [self._runner] if t), return_exceptions=True
        )
        if self._client:
            await self._client.aclose()

    def send(
        self, url: str, payload: dict[str, Any], secret: str, *, endpoint_id: str = ""
    ) -> None:
        body = codec.dumps(payload)
        self._queue.put_nowait((url, body, secret, endpoint_id))

    async def join(self) -> None:
        """Wait until every webhook sent so far has ended (delivered, failed or refused)."""
        await self._queue.join()

    def _ended(self, endpoint_id: str, outcome: str) -> None:
        if outcome == "delivered":
            self.delivered += 1
        else:
            self.failed += 1
        if self._on_outcome is not None:
            self._on_outcome(endpoint_id, outcome)

    async def _run(self) -> None:
        while True:
            url, body, secret, endpoint_id = await self._queue.get()
            task = asyncio.create_task(self._deliver(url, body, secret, endpoint_id))
            self._tasks.add(task)
            task.add_done_callback(self._delivery_ended)

    def _delivery_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._queue.task_done()

    async def _deliver(self, url: str, body: bytes, secret: str, endpoint_id: str = "") -> None:
        if self._client is None:
            raise RuntimeError("WebhookSender.start() was not called")
        if not self._allow_private and not await resolve_public(url):
            log.warning("webhook refused: %s is not a public address", url)
            self._ended(endpoint_id, "refused")
            return
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        for attempt in range(self._max_attempts):
            try:
                response = await self._client.post(url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    self._ended(endpoint_id, "delivered")
                    return
                log.info("webhook %s answered %s", url, response.status_code)
            except httpx.HTTPError as exc:
                log.info("webhook %s failed: %s", url, exc)
            await asyncio.sleep(self._backoff_s * 2**attempt)
        self._ended(endpoint_id, "failed")
        log.warning("webhook %s given up after %d attempts", url, self._max_attempts)
