"""The store lock on SQLite (store.base.Locks): one row per lock, a lease on the store's
clock."""

from __future__ import annotations

from podium.store.sqlite.db import Connected, guarded

__all__ = ["SQLiteLocks"]


class SQLiteLocks(Connected):
    @guarded
    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        now = self.clock.now()
        with self._tx() as db:
            cur = db.execute(
                """INSERT INTO locks (name, owner, until) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                       until = excluded.until
                   WHERE locks.owner = excluded.owner OR locks.until <= ?""",
                (name, owner, now + lease_s, now),
            )
        return cur.rowcount > 0
