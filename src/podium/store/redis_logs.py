"""Worker logs in Redis (store.base.WorkerLogs), on the store's connection pool.

    {p}:logseq              string  the store-wide line counter (the cursor)
    {p}:log:{ep}:{worker}   stream  the worker's lines; entry id "<seq>-0", fields
                                    t (capture time), x (text), j (job ids, JSON);
                                    XADD MAXLEN keeps the last `keep` exactly
    {p}:logw:{ep}           zset    the endpoint's index: worker -> last append (store clock)
    {p}:logw                zset    every writer, "{ep}/{worker}" -> last append (expiry)

An append is one script (lua/logs_append.lua): the seqs it takes from the counter and
the entries it adds are one atomic step, so every seq up to the counter's value is
either stored or trimmed, and a reader that reads the counter first never misses a line
below it. Stream keys also carry a key TTL (KEY_TTL_MS), so a log nobody expires still
goes. Endpoint ids hold no `/` (they are generated).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from podium.clock import Clock
from podium.errors import StoreUnavailable
from podium.logs.lines import RETENTION_MAX_MS, LogLine, LogQuery, StoredLine
from podium.store.base import LogPage

__all__ = ["RedisWorkerLogs"]

_LUA = Path(__file__).with_name("lua")
# Stream keys vanish this long after their last append even when no reaper runs (the
# reaper forgets a silent worker's log after PODIUM_LOG_RETENTION_MS, at most this).
KEY_TTL_MS = RETENTION_MAX_MS
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(
    method: Callable[Concatenate[RedisWorkerLogs, _P], Awaitable[_R]],
) -> Callable[Concatenate[RedisWorkerLogs, _P], Coroutine[Any, Any, _R]]:
    @functools.wraps(method)
    async def wrapper(self: RedisWorkerLogs, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    return wrapper


def _entry(worker_id: str, entry: tuple[str, dict[str, str]]) -> StoredLine:
    entry_id, fields = entry
    return StoredLine(
        seq=int(entry_id.split("-", 1)[0]),
        worker_id=worker_id,
        at=float(fields["t"]),
        text=fields["x"],
        jobs=tuple(json.loads(fields["j"])),
    )


class RedisWorkerLogs:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        clock: Clock,
        unavailable: Callable[[RedisError], StoreUnavailable],
    ) -> None:
        self._redis = client
        self.prefix = prefix
        self.clock = clock
        self._unavailable = unavailable
        self._append = client.register_script((_LUA / "logs_append.lua").read_text())
        self._forget = client.register_script((_LUA / "logs_forget.lua").read_text())

    def _stream(self, endpoint_id: str, worker_id: str) -> str:
        return f"{self.prefix}:log:{endpoint_id}:{worker_id}"

    @_guarded
    async def append(
        self, endpoint_id: str, worker_id: str, lines: list[LogLine], keep: int
    ) -> int:
        args: list[str] = [
            self.prefix,
            endpoint_id,
            worker_id,
            repr(self.clock.now()),
            str(max(keep, 0)),
            str(KEY_TTL_MS),
            str(len(lines)),
        ]
        for ln in lines:
            args += [repr(ln.at), ln.text, json.dumps(ln.jobs)]
        return int(await self._append(args=args))

    @_guarded
    async def read(self, endpoint_id: str, query: LogQuery) -> LogPage:
        top = int(await self._redis.get(f"{self.prefix}:logseq") or 0)
        if query.tail == 0:
            return LogPage([], top)
        if query.worker is not None:
            workers = [query.worker]
        else:
            workers = await self._redis.zrange(f"{self.prefix}:logw:{endpoint_id}", 0, -1)
        count = None if query.job is not None else query.tail  # a job filter reads all
        pipe = self._redis.pipeline(transaction=False)
        for w in workers:
            key = self._stream(endpoint_id, w)
            if query.since is None:
                pipe.xrevrange(key, f"{top}-0", "-", count=count)
            else:
                pipe.xrange(key, f"({query.since}-0", f"{top}-0", count=count)
        found = await pipe.execute() if workers else []
        lines = sorted(
            (
                line
                for w, entries in zip(workers, found, strict=True)
                for line in (_entry(w, e) for e in entries)
                if query.matches(line)
            ),
            key=lambda ln: ln.seq,
        )
        if query.since is None:
            return LogPage(lines[-query.tail :], top)
        if len(lines) >= query.tail:
            page = lines[: query.tail]
            return LogPage(page, page[-1].seq)
        return LogPage(lines, top)

    @_guarded
    async def expire(self, before: float) -> int:
        total = 0
        for _ in range(1000):  # 500 writers per call; bounded
            n = int(await self._forget(args=[self.prefix, "before", repr(before)]))
            total += n
            if n < 500:
                break
        return total

    async def delete_endpoint(self, endpoint_id: str) -> None:
        """Called by RedisStore.delete_endpoint (which guards it)."""
        await self._forget(args=[self.prefix, "endpoint", endpoint_id])
