"""The store lock on Redis (store.base.Locks): a lease on the store's clock."""

from __future__ import annotations

from redis.commands.core import AsyncScript

from podium.store.redis.db import Connected, guarded
from podium.store.redis.records import (
    _num,
)

__all__ = ["RedisLocks"]


class RedisLocks(Connected):
    _lock_script: AsyncScript

    @guarded
    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        key = self._k("lock", name)
        now = self.clock.now()
        ms = max(1, int(lease_s * 1000))
        return bool(
            await self._lock_script(keys=[key], args=[owner, _num(now), _num(now + lease_s), ms])
        )
