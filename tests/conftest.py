"""Shared fixtures: the injected clock and one store fixture per backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from podium.clock import ManualClock
from podium.store import JobStore, open_store

REDIS_URL = os.environ.get("PODIUM_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        return False
    return True


def _backends() -> list[str]:
    backends = ["sqlite"]
    try:
        import podium.store.redis  # noqa: F401
    except ImportError:
        return backends
    backends.append("redis")
    return backends


STORE_BACKENDS = _backends()
# The `store` parameter of every contract and API test: the Redis one is marked, so that
# `-m "not redis"` runs them on SQLite only.
STORE_PARAMS = [
    pytest.param(b, marks=pytest.mark.redis, id=b) if b == "redis" else b for b in STORE_BACKENDS
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def make_store(backend: str, tmp_path, clock: ManualClock) -> JobStore:
    if backend == "sqlite":
        return open_store(str(tmp_path / "podium.db"), clock)
    if not _redis_available():
        pytest.fail(f"Redis is not answering at {REDIS_URL}; start it (see .ci/run).")
    # Each test gets its own key prefix so tests never see each other's data.
    url = f"{REDIS_URL}?prefix=t{uuid.uuid4().hex[:8]}"
    return open_store(url, clock)


def drop_redis_prefix(store: JobStore | str) -> None:
    """Delete a test's Redis keys (active jobs carry no TTL, so nothing else would).
    `store`: a store object, or a store URL with `?prefix=`."""
    if isinstance(store, str):
        prefix = store.split("prefix=", 1)[1] if "prefix=" in store else None
    else:
        prefix = getattr(store, "prefix", None)
    if prefix is None:
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


@pytest.fixture(params=STORE_PARAMS)
async def store(request, tmp_path, clock) -> AsyncIterator[JobStore]:
    s = await make_store(request.param, tmp_path, clock)
    try:
        yield s
    finally:
        await s.close()
        drop_redis_prefix(s)


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (head + 2 worker nodes of 2 fake GPUs) for every `ray`
    test of the session: starting one costs ~30 s on a small machine."""
    from tests.ray_cluster import RayCluster, ray_available

    why = ray_available()
    if why is not None:
        pytest.skip(why)
    cluster = RayCluster(workers=2, gpus_per_node=2)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
