"""What only the Redis store does: wake-ups across instances, key TTLs, unreachable Redis."""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from podium.clock import ManualClock
from podium.errors import StoreUnavailable
from podium.jobs import Job, JobStatus, Policy, Submission, WorkerReport
from tests.conftest import REDIS_URL

redis_store = pytest.importorskip("podium.store.redis")
RedisStore = redis_store.RedisStore
TTL_GRACE_MS = pytest.importorskip("podium.store.redis.records").TTL_GRACE_MS

pytestmark = pytest.mark.redis

EP = "ep1"
LEASE = 30.0

MakeStore = Callable[[], Awaitable["redis_store.RedisStore"]]


def new_job(clock: ManualClock) -> Job:
    sub = Submission(input_json='{"n":1}', policy=Policy(600_000, 86_400_000, False))
    return Job.new(EP, sub, clock.now(), retention_ms=60_000)


@pytest.fixture
async def stores(clock: ManualClock) -> AsyncIterator[MakeStore]:
    """Stores on one fresh prefix (like gateways sharing one Redis); keys deleted after.
    Their fallback poll (60 s) is longer than any wait here: whatever wakes a waiter in
    these tests is a notification."""
    url = f"{REDIS_URL}?prefix=t{uuid.uuid4().hex[:8]}&poll=60"
    opened: list[RedisStore] = []

    async def make() -> RedisStore:
        store = RedisStore(url, clock)
        try:
            await store.ping()
        except StoreUnavailable as exc:
            pytest.fail(f"Redis is not answering at {REDIS_URL}: {exc}")
        opened.append(store)
        return store

    try:
        yield make
    finally:
        if opened:
            r = opened[0]._redis
            keys = [k async for k in r.scan_iter(match=opened[0].prefix + ":*", count=1000)]
            if keys:
                await r.delete(*keys)
        for store in opened:
            await store.close()


async def watching(store, key: str) -> None:
    """Until `store` has a wait loop on `key` (bounded)."""
    for _ in range(500):
        if key in store._events.watching:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"no wait loop on {key}")


async def test_submit_on_one_instance_wakes_take_on_another(stores, clock):
    a, b = await stores(), await stores()
    waiter = asyncio.create_task(b.take(EP, "w1", 1, hold=30, lease_s=LEASE))
    await watching(b, "q:" + EP)
    assert not waiter.done()
    job = new_job(clock)
    await a.submit(job, retry_limit=2)
    taken = await asyncio.wait_for(waiter, 20)  # a poll (60 s) could not have done it
    assert [j.id for j in taken] == [job.id]


async def test_finish_on_one_instance_wakes_wait_on_another(stores, clock):
    a, b = await stores(), await stores()
    job = new_job(clock)
    await a.submit(job, retry_limit=2)
    seen = await b.get(job.id)
    waiter = asyncio.create_task(b.wait_for_change(job.id, seen, 30, final_only=True))
    await watching(b, "j:" + job.id)
    await a.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await a.finish(job.id, "w1", WorkerReport("final", JobStatus.COMPLETED, output_json="7"))
    got = await asyncio.wait_for(waiter, 20)
    assert got is not None and got.output == 7


async def test_final_jobs_keys_carry_a_ttl(stores, clock):
    store = await stores()
    job = new_job(clock)
    await store.submit(job, retry_limit=2)
    r, job_key = store._redis, f"{store.prefix}:job:{job.id}"
    stream_key = f"{store.prefix}:stream:{job.id}"
    await store.take(EP, "w1", 1, hold=0, lease_s=LEASE)
    await store.append_stream(job.id, "w1", ['"a"'], 1024)
    assert await r.pttl(job_key) == -1  # active jobs never expire on their own
    await store.finish(job.id, "w1", WorkerReport("final", JobStatus.COMPLETED, output_json="[]"))
    for key in (job_key, stream_key):
        assert 60_000 < await r.pttl(key) <= 60_000 + TTL_GRACE_MS
    await store.set_retention(job.id, 5_000)
    assert await r.pttl(job_key) <= 5_000 + TTL_GRACE_MS


async def test_prefix_comes_from_the_url(clock):
    store = RedisStore("redis://127.0.0.1:6379/15?prefix=abc&socket_timeout=2", clock)
    try:
        assert store.prefix == "abc"
        assert store._redis.connection_pool.connection_kwargs["socket_timeout"] == 2
    finally:
        await store.close()
    default = RedisStore("redis://127.0.0.1:6379/15", clock)
    try:
        assert default.prefix == "podium"
    finally:
        await default.close()


async def test_unreachable_redis_raises_store_unavailable_promptly(clock):
    store = RedisStore("redis://127.0.0.1:1/0", clock)
    try:
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.submit(new_job(clock), retry_limit=2)
        # the take fails at once instead of holding its long-poll (60 s) on a dead store
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.take(EP, "w1", 1, hold=60, lease_s=LEASE), 30)
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_redis(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    pytest.fail("The private redis-server did not start.")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
async def test_survives_a_redis_restart(clock):
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0?prefix=restart&poll=60"
    proc = await _start_redis(port)
    a, b = RedisStore(url, clock), RedisStore(url, clock)
    try:
        assert await b.take(EP, "w1", 1, hold=0.1, lease_s=LEASE) == []  # pooled + subscribed
        await _stop(proc)
        with pytest.raises(StoreUnavailable):
            await a.ping()
        proc = await _start_redis(port)
        # b's pooled connection died with the old server: it is replaced, not reported
        assert await b.take(EP, "w1", 1, hold=0, lease_s=LEASE) == []
        for _ in range(100):  # the subscriber re-subscribes on its own
            if b._events.subscribed.is_set():
                break
            await asyncio.sleep(0.05)
        waiter = asyncio.create_task(b.take(EP, "w1", 1, hold=30, lease_s=LEASE))
        await watching(b, "q:" + EP)
        job = new_job(clock)
        await a.submit(job, retry_limit=2)  # only the re-made subscription can wake b
        assert [j.id for j in await asyncio.wait_for(waiter, 20)] == [job.id]
    finally:
        await a.close()
        await b.close()
        await _stop(proc)
