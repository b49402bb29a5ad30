"""The worker registry on Redis (store.base.WorkerRegistry)."""

from __future__ import annotations

from typing import Any

from podium import codec
from podium.board import WorkerInfo
from podium.store.redis.db import Connected, guarded
from podium.store.redis.records import (
    _dumps,
    _num,
    _opt,
)

__all__ = ["RedisWorkers"]


class RedisWorkers(Connected):
    @guarded
    async def heartbeat(
        self,
        endpoint_id: str,
        worker_id: str,
        job_ids: list[str],
        lease_s: float,
        state: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock.now()
        await self._run(
            "heartbeat",
            endpoint_id,
            worker_id,
            _num(now + lease_s),
            *_opt(state),
            *_opt(None if info is None else _dumps(info)),
            *job_ids,
            now=now,
        )

    @guarded
    async def workers(self, endpoint_id: str, alive_since: float) -> list[WorkerInfo]:
        [rows] = await self._run("workers", endpoint_id, _num(alive_since))
        return [
            WorkerInfo(
                endpoint_id=endpoint_id,
                worker_id=w,
                last_seen=float(seen),
                jobs=len(held),
                state=state,
                info=codec.loads_trusted(info),
                job_ids=tuple(sorted(held)),
            )
            for w, seen, state, info, held in sorted(rows, key=lambda row: row[0])
        ]
