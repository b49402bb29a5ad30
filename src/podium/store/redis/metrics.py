"""An endpoint's metrics buckets in Redis (store.base.EndpointMetrics, podium.series), on
the store's connection pool.

    {p}:mx:{ep}:{width}:{start}   hash   one bucket: field -> value (podium.series)

A write is one script (lua/metrics_record.lua) for all the deltas a gateway drained:
counts are added (HINCRBY) and samples keep the larger, so the buckets of every gateway
on the prefix merge. Each key carries a TTL of what its tier keeps past the bucket's end
(from the injected clock), so Redis drops old buckets itself and `expire` has nothing to
do. A read fetches the window's keys in one pipeline (a few hundred at most, whatever the
number of jobs); deleting an endpoint unlinks every key its tiers can hold.
"""

from __future__ import annotations

from pathlib import Path

from podium.series import TIERS, Delta, bucket_starts, placements, readable
from podium.store.redis.db import Role, guarded

__all__ = ["RedisEndpointMetrics"]

_LUA = Path(__file__).parents[1] / "lua"
_ARGS_PER_CALL = 20_000  # a script call's arguments, at most (large drains are split)


class RedisEndpointMetrics(Role):
    def _setup(self) -> None:
        self._record = self._redis.register_script((_LUA / "metrics_record.lua").read_text())

    def _key(self, endpoint_id: str, width_s: int, start: int) -> str:
        return f"{self.prefix}:mx:{endpoint_id}:{width_s}:{start}"

    @guarded
    async def record(self, deltas: list[Delta]) -> None:
        now = self.clock.now()
        calls: list[list[str]] = []
        args: list[str] = []
        n = 0
        for d in deltas:
            for tier, start, left_s in placements(d.minute, now):
                ttl_ms = max(1, int(left_s * 1000))
                args += [self._key(d.endpoint_id, tier.width_s, start), str(ttl_ms)]
                args += [str(len(d.add)), str(len(d.peak))]
                for k, v in (*d.add.items(), *d.peak.items()):
                    args += [k, str(v)]
                n += 1
            if len(args) >= _ARGS_PER_CALL:
                calls.append([str(n), *args])
                args, n = [], 0
        if n:
            calls.append([str(n), *args])
        for call in calls:
            await self._record(args=call)

    @guarded
    async def read(
        self, endpoint_id: str, width_s: int, start: int, end: int
    ) -> dict[int, dict[str, int]]:
        starts = bucket_starts(width_s, *readable(width_s, start, end, self.clock.now()))
        async with self._redis.pipeline(transaction=False) as pipe:
            for at in starts:
                pipe.hgetall(self._key(endpoint_id, width_s, at))
            found = await pipe.execute()
        return {
            at: {k: int(v) for k, v in fields.items()}
            for at, fields in zip(starts, found, strict=True)
            if fields
        }

    async def expire(self, now: float) -> int:
        """Nothing: every bucket key carries its TTL."""
        return 0

    @guarded
    async def delete_endpoint(self, endpoint_id: str) -> None:
        now = self.clock.now()
        keys = []
        for t in TIERS:  # every bucket a read could still see (series.readable)
            starts = bucket_starts(t.width_s, *readable(t.width_s, 0, 2**62, now))
            keys += [self._key(endpoint_id, t.width_s, at) for at in starts]
        for i in range(0, len(keys), 1000):
            await self._redis.unlink(*keys[i : i + 1000])
