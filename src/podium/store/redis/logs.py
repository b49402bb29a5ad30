"""Worker logs in Redis (store.base.WorkerLogs), on the store's connection pool.

    {p}:logseq              string  the store-wide line counter (the cursor)
    {p}:log:{ep}:{worker}   stream  the worker's lines; entry id "<seq>-0", fields
                                    t (capture time), x (text), j (job ids, JSON);
                                    XADD MAXLEN keeps the last `keep` exactly
    {p}:logw:{ep}           zset    the endpoint's index: worker -> the seq of its last line
                                    (a read skips the workers with nothing it wants)
    {p}:logw                zset    every writer, "{ep}/{worker}" -> last append (expiry)
    {p}:logjob:{ep}:{job}   zset    the job's lines: "{seq}:{worker}", score seq
    {p}:logjw:{ep}:{worker} zset    the worker's entries in those: "{seq}:{job}", score
                                    seq (what to take out when its stream trims a line)
    {p}:logjobs:{ep}        set     the jobs that have an index (deleted with the endpoint)
    {p}:logb:{ep}           hash    worker -> what its kept lines cost (logs.lines.line_cost)

An append is one script (lua/logs_append.lua, after lua/logs_prelude.lua): the seqs it
takes from the counter, the entries it adds, the lines it trims (the worker's beyond its
last `lines_per_worker`; past the endpoint's LogBudget, the whole logs of its least
recently written workers, or its oldest lines across its workers) and the job index
entries of the lines it trimmed are one atomic step, so every seq up to the counter's
value is either stored or trimmed, a reader that reads the counter first never misses a
line below it, and a job's index
holds exactly its lines that are kept (a job read costs its own lines, not the log's).
Every key also carries a TTL (KEY_TTL_MS), so a log nobody expires still goes. Endpoint
ids hold no `/` (they are generated).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from podium.logs.lines import (
    BYTES_LOW_WATER,
    RETENTION_MAX_MS,
    LogBudget,
    LogLine,
    LogQuery,
    StoredLine,
)
from podium.store.base import LogPage
from podium.store.redis.db import Role, guarded

__all__ = ["RedisWorkerLogs"]

_LUA = Path(__file__).parents[1] / "lua"
# Stream keys vanish this long after their last append even when no reaper runs (the
# reaper forgets a silent worker's log after PODIUM_LOG_RETENTION_MS, at most this).
KEY_TTL_MS = RETENTION_MAX_MS
TAIL_GROUP = 8  # workers read per round trip when a tail spans the endpoint


def _entry(worker_id: str, entry: Any) -> StoredLine:
    """An XRANGE entry as redis-py parses it (id, {field: value}), or as a script returns
    it (id, [field, value, ...])."""
    entry_id, fields = entry
    if isinstance(fields, list):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    return StoredLine(
        seq=int(entry_id.split("-", 1)[0]),
        worker_id=worker_id,
        at=float(fields["t"]),
        text=fields["x"],
        jobs=tuple(json.loads(fields["j"])),
    )


class RedisWorkerLogs(Role):
    def _setup(self) -> None:
        prelude = (_LUA / "logs_prelude.lua").read_text()
        script = self._redis.register_script
        self._append = script(prelude + (_LUA / "logs_append.lua").read_text())
        self._forget = script(prelude + (_LUA / "logs_forget.lua").read_text())

    def _stream(self, endpoint_id: str, worker_id: str) -> str:
        return f"{self.prefix}:log:{endpoint_id}:{worker_id}"

    @guarded
    async def append(
        self, endpoint_id: str, worker_id: str, lines: list[LogLine], budget: LogBudget
    ) -> int:
        args: list[str] = [
            self.prefix,
            endpoint_id,
            worker_id,
            repr(self.clock.now()),
            str(max(budget.lines_per_worker, 0)),
            str(budget.workers_per_endpoint),
            str(budget.bytes_per_endpoint),
            repr(BYTES_LOW_WATER),
            str(KEY_TTL_MS),
            str(len(lines)),
        ]
        for ln in lines:
            args += [repr(ln.at), ln.text, json.dumps(ln.jobs)]
        return int(await self._append(args=args))

    @guarded
    async def read(self, endpoint_id: str, query: LogQuery) -> LogPage:
        top = int(await self._redis.get(f"{self.prefix}:logseq") or 0)
        if query.tail == 0:
            return LogPage([], top)
        if query.job is not None:
            lines = await self._job_lines(endpoint_id, query, top)
            return _page(lines, query, top)
        index = f"{self.prefix}:logw:{endpoint_id}"
        if query.since is not None:
            if query.since >= top:  # a follower's usual poll: nothing can be newer
                return LogPage([], top)
            if query.worker is not None:
                workers = [query.worker]
            else:  # only the workers that wrote after `since`
                # decode_responses=True: members are str
                workers = cast(
                    list[str], await self._redis.zrangebyscore(index, f"({query.since}", "+inf")
                )
            lines = await self._read_streams(endpoint_id, workers, query, top)
            return _page(sorted(lines, key=lambda ln: ln.seq), query, top)
        if query.worker is not None:
            lines = await self._read_streams(endpoint_id, [query.worker], query, top)
            return _page(lines, query, top)
        # The last `tail` of the endpoint: workers by their last line, newest first; stop
        # once the next worker's last line is older than the tail found so far.
        ranked = cast(
            list[tuple[str, float]], await self._redis.zrevrange(index, 0, -1, withscores=True)
        )
        lines = []
        at, size = 0, 1  # 1, 2, 4 ... TAIL_GROUP workers a round trip
        while at < len(ranked):
            if len(lines) >= query.tail:
                lines.sort(key=lambda ln: ln.seq)
                lines = lines[-query.tail :]
                if ranked[at][1] < lines[0].seq:
                    break
            group = [w for w, _ in ranked[at : at + size]]
            lines += await self._read_streams(endpoint_id, group, query, top)
            at, size = at + size, min(size * 2, TAIL_GROUP)
        return _page(sorted(lines, key=lambda ln: ln.seq), query, top)

    async def _read_streams(
        self, endpoint_id: str, workers: list[str], query: LogQuery, top: int
    ) -> list[StoredLine]:
        """Up to `tail` lines of each worker: its newest at or below `top`, or its oldest
        after `since`; in each worker's order."""
        pipe = self._redis.pipeline(transaction=False)
        for w in workers:
            key = self._stream(endpoint_id, w)
            if query.since is None:
                pipe.xrevrange(key, f"{top}-0", "-", count=query.tail)
            else:
                pipe.xrange(key, f"({query.since}-0", f"{top}-0", count=query.tail)
        found = await pipe.execute() if workers else []
        out: list[StoredLine] = []
        for w, entries in zip(workers, found, strict=True):
            got = [ln for ln in (_entry(w, e) for e in entries) if query.matches(ln)]
            out += reversed(got) if query.since is None else got
        return out

    async def _job_lines(self, endpoint_id: str, query: LogQuery, top: int) -> list[StoredLine]:
        """The job's lines from its index: the newest `tail` (or the oldest after
        `since`), each read by its seq from its worker's stream."""
        key = f"{self.prefix}:logjob:{endpoint_id}:{query.job or ''}"
        start, num = (None, None) if query.worker is not None else (0, query.tail)
        if query.since is None:
            reply = await self._redis.zrevrangebyscore(key, top, "-inf", start=start, num=num)
        else:
            reply = await self._redis.zrangebyscore(
                key, f"({query.since}", top, start=start, num=num
            )
        members = cast(list[str], reply)  # decode_responses=True: members are str
        split = [m.split(":", 1) for m in members]
        found = [(seq, w) for seq, w in split if query.worker in (None, w)]
        pipe = self._redis.pipeline(transaction=False)
        for seq, w in found:
            pipe.xrange(self._stream(endpoint_id, w), f"{seq}-0", f"{seq}-0")
        entries = await pipe.execute() if found else []
        lines = [
            line
            for (_, w), got in zip(found, entries, strict=True)
            for line in (_entry(w, e) for e in got)
            if query.matches(line)
        ]
        return sorted(lines, key=lambda ln: ln.seq)

    @guarded
    async def expire(self, before: float) -> int:
        """One script per silent worker (each costs that worker's kept lines)."""
        total = 0
        for _ in range(1000):  # bounded: 500 writers a round
            due = cast(
                list[str],  # decode_responses=True: members are str
                await self._redis.zrangebyscore(
                    f"{self.prefix}:logw", "-inf", f"({before!r}", start=0, num=500
                ),
            )
            for member in due:
                ep, _, worker = member.partition("/")
                args = [self.prefix, ep, "worker", worker, repr(before)]
                total += int(await self._forget(args=args))
            if len(due) < 500:
                break
        return total

    async def delete_endpoint(self, endpoint_id: str) -> None:
        """Called by RedisStore.delete_endpoint (which guards it)."""
        await self._forget(args=[self.prefix, endpoint_id, "endpoint"])


def _page(lines: list[StoredLine], query: LogQuery, top: int) -> LogPage:
    """Matching lines in seq order -> the page the query asks for, and its cursor."""
    if query.since is None:
        return LogPage(lines[-query.tail :], top)
    if len(lines) >= query.tail:
        page = lines[: query.tail]
        return LogPage(page, page[-1].seq)
    return LogPage(lines, top)
