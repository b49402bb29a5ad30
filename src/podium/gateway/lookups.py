"""A short-lived, in-process cache of endpoints and API keys, read on every request.

Every client and worker request looks up its key (or token) and its endpoint; with Redis
that is two round trips before any work. Entries live `ttl_s` seconds (default 2 s).
Changes made through this gateway (revoke, update, delete) drop the entry at once;
changes made through another gateway sharing the store are seen within `ttl_s`.
Misses are never cached, so a new endpoint or key is usable everywhere at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from podium.endpoints import Endpoint
from podium.keys import ApiKey
from podium.store import JobStore

__all__ = ["Lookups"]

T = TypeVar("T")
MAX_ENTRIES = 10_000


class _TTLCache(Generic[T]):
    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._entries: dict[str, tuple[float, T]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if value is None:
            self._entries.pop(key, None)
        elif self._ttl > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, value)
        return value

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)


class Lookups:
    def __init__(self, store: JobStore, ttl_s: float = 2.0) -> None:
        self._store = store
        self._endpoints: _TTLCache[Endpoint] = _TTLCache(ttl_s)
        self._keys: _TTLCache[ApiKey] = _TTLCache(ttl_s)

    async def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return await self._endpoints.get(endpoint_id, lambda: self._store.get_endpoint(endpoint_id))

    async def key(self, key_hash: str) -> ApiKey | None:
        return await self._keys.get(key_hash, lambda: self._store.key_by_hash(key_hash))

    def forget_endpoint(self, endpoint_id: str) -> None:
        self._endpoints.drop(endpoint_id)

    def forget_key(self, key_hash: str) -> None:
        self._keys.drop(key_hash)
