"""The distributed store: one Redis server shared by any number of gateways.

Every method that changes a job is one Lua script: Redis runs it atomically, and each
script checks the job's current status (and, for worker calls, the worker that holds
it) before it changes anything, exactly like SQLiteStore's guarded transactions. Times
come from the injected clock and go into the scripts as arguments (never Redis TIME).

Key layout (`{p}` is the key prefix, `?prefix=` in the URL, default "podium"):

    {p}:seq                        string  counter: queue tiebreak and listing order
    {p}:job:{id}                   hash    the job's fields; input/output as JSON text
    {p}:stream:{id}                list    stream chunks (JSON text), in order
    {p}:q:{ep}, {p}:ql:{ep}        zset    queued jobs, normal / lowPriority; score
                                           queued_at, member "<seq:016d>:<id>", so ties
                                           fall back to submission order
    {p}:run:{ep}                   zset    IN_PROGRESS job ids
    {p}:fin:{STATUS}:{ep}          zset    final job ids per status, score purge_at
    {p}:retried:{ep}               zset    ids with retries > 0 (score purge_at or +inf)
    {p}:ix:ttl|exec|lease|purge    zset    deadlines, so expire() touches only due jobs
    {p}:h:{ep}, {p}:h:{ep}:{STATUS} zset   the history (podium.history): every job of the
                                           endpoint, and those of each status; score
                                           created_at, member id (ties: id order)
    {p}:hjob:{id}                  hash    a purged job's history record (no input or
                                           output) until {p}:ix:forget says forget it
    {p}:stop:{ep}:{worker}         zset    jobs the worker must stop (checked on read)
    {p}:wseen:{ep}                 zset    worker -> last_seen;  {p}:wstate:{ep},
                                           {p}:winfo:{ep} hashes: worker -> state, info
    {p}:endpoints, {p}:keys        hash    id -> JSON doc; `:order` zset (first put),
                                           `:lookup` hash (token/key hash -> id),
                                           `:lookup_of` hash (id -> token/key hash)
    {p}:settings                   hash    name -> value
    {p}:log*                               worker logs: logs.py
    {p}:mx:*                               metrics buckets: metrics.py
    {p}:tpl, {p}:tpl:names         hash    templates: id -> JSON doc; name -> id

Final jobs' job and stream keys also carry a key TTL (retention plus TTL_GRACE_MS), so
they vanish even when no reaper runs; expire() deletes them on time.

Waiting: every script publishes what it changed; events.py wakes waiters in
every gateway on the prefix from one pattern subscription; a 1 s fallback poll (`?poll=`
in the URL) covers a lost subscription.
Redis Cluster is not supported (scripts compute their keys).


One client, the store's roles (store.base) each in its module:

    jobs.py      the queue and the jobs (JobQueue, JobHistory)
    workers.py   the worker registry (WorkerRegistry)
    catalog.py   endpoints, keys, templates, settings (Catalog)
    locks.py     the store lock (Locks)
    logs.py      worker logs (WorkerLogs: `store.logs`)
    metrics.py   metrics buckets (EndpointMetrics: `store.metrics`)
    events.py    the pub/sub subscriber that wakes waiters across gateways
    records.py   constants, scripts, conversions; db.py the error guard they all use
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.maint_notifications import MaintNotificationsConfig

from podium.clock import Clock
from podium.store.redis.catalog import RedisCatalog
from podium.store.redis.db import guarded
from podium.store.redis.events import RedisEvents
from podium.store.redis.jobs import RedisJobs
from podium.store.redis.locks import RedisLocks
from podium.store.redis.logs import RedisWorkerLogs
from podium.store.redis.metrics import RedisEndpointMetrics
from podium.store.redis.records import (
    DEFAULT_PREFIX,
    FALLBACK_POLL_S,
    HEALTH_CHECK_S,
    HOLD_LOCK,
    MAX_CONNECTIONS,
    PRELUDE,
    SCRIPTS,
    SOCKET_TIMEOUT_S,
    lua,
)
from podium.store.redis.workers import RedisWorkers

__all__ = ["RedisStore"]


def _split_options(url: str) -> tuple[str, str, float]:
    """Take Podium's own options out of the URL's query; redis-py gets the rest:
    `prefix` (key prefix) and `poll` (the fallback poll of waiters, seconds)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("prefix", "poll")}
    prefix = ours.get("prefix") or DEFAULT_PREFIX
    try:
        poll = float(ours.get("poll") or FALLBACK_POLL_S)
    except ValueError:
        raise ValueError(f"`poll` in the store URL must be seconds, got {ours['poll']!r}") from None
    if not 0 < poll < 3600:
        raise ValueError(f"`poll` in the store URL must be between 0 and 3600 s, got {poll}")
    rest = urlencode([(k, v) for k, v in query if k not in ours])
    return urlunsplit(parts._replace(query=rest)), prefix, poll


class RedisStore(RedisJobs, RedisWorkers, RedisCatalog, RedisLocks):
    def __init__(self, url: str, clock: Clock) -> None:
        self.clock = clock
        redis_url, self.prefix, self._poll_s = _split_options(url)
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            # A burst of calls waits for a free connection instead of failing at once.
            max_connections=MAX_CONNECTIONS,
            timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            # No silent retries: a script replayed after a lost reply could apply twice.
            retry=Retry(NoBackoff(), 0),
            # Off, not "auto": with "auto" redis-py 8 skips its check for pooled
            # connections that a Redis restart closed, and the next call fails.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        kw = self._redis.connection_pool.connection_kwargs
        self.where = kw.get("path") or f"{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}"
        self._scripts: dict[str, AsyncScript] = {
            name: self._redis.register_script(PRELUDE + lua(name)) for name in SCRIPTS
        }
        self._lock_script = self._redis.register_script(HOLD_LOCK)
        self._submits: list[tuple[list[str], asyncio.Future[str]]] = []  # for the next call
        self._submit_tasks: set[asyncio.Task[None]] = set()
        self.logs = RedisWorkerLogs(self._redis, self.prefix, clock, self._unavailable)
        self.metrics = RedisEndpointMetrics(self._redis, self.prefix, clock, self._unavailable)
        self._events = RedisEvents(self._redis, self.prefix, self.where)

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the subscriber and close connections; the data stays in Redis."""
        await self._events.close()
        if self._submit_tasks:  # submissions on their way land (or fail) first
            await asyncio.gather(*self._submit_tasks, return_exceptions=True)
        await self._redis.aclose()

    @guarded
    async def ping(self) -> None:
        await self._redis.ping()

    # --- across the roles ---------------------------------------------------------------

    @guarded
    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete the endpoint, its queued jobs, its workers' records, their logs and its
        metrics."""
        [existed] = await self._run("delete_endpoint", endpoint_id)
        await self.purge_queue(endpoint_id)
        await self.logs.delete_endpoint(endpoint_id)
        await self.metrics.delete_endpoint(endpoint_id)
        return bool(existed)
