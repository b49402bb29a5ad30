"""Waking waiters across gateways on Redis: one pattern subscription per store.

Every script publishes what it changed on `{p}:n:q:{ep}` (queue) and `{p}:n:j:{id}` (job),
with this store's origin as the message, and the caller notifies its own process at
once. `RedisEvents` holds one pattern subscription (`{p}:n:*`) that feeds what the
other stores on the prefix published into the in-process Notifier, so a job submitted
through one gateway wakes a take() long-polling in another at once. A waiter counts the
notifications of its key while it runs (`watch`), so one arriving between its check
and its wait is not lost; a lost subscription is re-made with backoff and every watched
key is woken once after it (notifications may have been missed), and the store's
fallback poll covers the time between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.store.notify import Notifier

__all__ = ["LISTEN_TICK_S", "SUBSCRIBE_WAIT_S", "RedisEvents"]

log = logging.getLogger(__name__)

LISTEN_TICK_S = 5.0  # the subscriber wakes this often to health-check its connection
SUBSCRIBE_WAIT_S = 1.0  # how long a first waiter waits for the subscription
CONFIRM_TIMEOUT_S = 5.0  # how long Redis may take to confirm the subscription


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisEvents:
    def __init__(self, client: aioredis.Redis, prefix: str, where: str) -> None:
        self._redis = client
        self._where = where
        self.origin = uuid.uuid4().hex  # this store's name on the channels
        self._channel_prefix = f"{prefix}:n:"
        self._notifier = Notifier()
        self.watching: Counter[str] = Counter()  # keys with a wait loop running
        self._generation: dict[str, int] = {}  # notifications seen per watched key
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self._listen_tried = asyncio.Event()
        self._task_name = f"podium-redis-{prefix}"

    def notify(self, key: str) -> None:
        if key in self.watching:
            self._generation[key] = self._generation.get(key, 0) + 1
        self._notifier.notify(key)

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[Callable[[], int]]:
        """Count notifications on `key` while a wait loop runs, so that one arriving
        between a check and the wait is not lost (the check awaits Redis)."""
        self.watching[key] += 1
        try:
            yield lambda: self._generation.get(key, 0)
        finally:
            self.watching[key] -= 1
            if not self.watching[key]:
                del self.watching[key]
                self._generation.pop(key, None)

    async def wait(self, key: str, timeout: float) -> None:
        await self._notifier.wait(key, timeout)

    async def ensure_listening(self) -> None:
        """Start the subscriber on first use; wait briefly for its first subscription."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name=self._task_name)
        if not self.subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUBSCRIBE_WAIT_S):
                    await self._listen_tried.wait()

    async def _listen(self) -> None:
        """Feed what every store on this prefix publishes into the local notifier."""
        delay = 0.1
        reconnect = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(_glob_escape(self._channel_prefix) + "*")
                async with asyncio.timeout(CONFIRM_TIMEOUT_S):  # until Redis confirms it
                    msg = None
                    while msg is None or msg["type"] != "psubscribe":
                        msg = await pubsub.get_message(timeout=CONFIRM_TIMEOUT_S)
                self.subscribed.set()
                self._listen_tried.set()
                delay = 0.1
                if reconnect:  # notifications may have been missed meanwhile
                    for key in list(self.watching):
                        self.notify(key)
                while True:
                    msg = await pubsub.get_message(timeout=LISTEN_TICK_S)
                    if msg and msg["type"] == "pmessage" and msg["data"] != self.origin:
                        self.notify(msg["channel"].removeprefix(self._channel_prefix))
            except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
                log.debug("Redis subscriber for %s lost its connection: %s", self._where, exc)
            except Exception:  # never let the subscriber die; waiters fall back to polling
                log.exception("Redis subscriber for %s failed", self._where)
            finally:
                self.subscribed.clear()
                self._listen_tried.set()
                await pubsub.aclose()
            reconnect = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        """Stop the subscriber (the client is the store's to close)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
