"""In-process wake-ups for waiting readers (long-poll take, runsync, status wait).

A waiter registers under a key ("q:<endpoint>" or "j:<job>") and is woken when a
writer in the same process notifies that key. Backends whose writes can come from
another process (Redis) add their own cross-process channel on top.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

__all__ = ["Notifier"]


class Notifier:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, key: str, n: int | None = None) -> None:
        """Wake the waiters on `key`: all of them, or at most `n` not yet woken (a new
        queued job needs one taker, not a stampede)."""
        woken = 0
        for event in self._waiters.get(key, ()):
            if n is not None and woken >= n:
                return
            if not event.is_set():
                event.set()
                woken += 1

    async def wait(self, key: str, timeout: float) -> bool:
        """Wait for a notification on `key`; False on timeout."""
        if timeout <= 0:
            return False
        event = asyncio.Event()
        waiters = self._waiters[key]
        waiters.add(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(key, None)
