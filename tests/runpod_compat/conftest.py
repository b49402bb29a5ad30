"""Fixtures for the RunPod SDK compatibility tests: one gateway for the directory, one
SDK worker process per handler (started together on first use), one SDK client driver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, _redis_available, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port
from tests.runpod_compat.harness import RUNPOD_PY, RunpodWorker, SdkDriver, WorkerPool


@pytest.fixture(scope="session", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The whole suite runs once per store backend: the embedded SQLite file, and Redis
    (distributed mode), so the SDK sees the same wire behaviour from both."""
    if not RUNPOD_PY.exists():
        pytest.skip(f"the runpod SDK venv is missing ({RUNPOD_PY})")
    store = None
    if request.param == "redis":
        if not _redis_available():
            pytest.fail(f"Redis is not answering at {REDIS_URL}; start it (see .ci/run).")
        store = f"{REDIS_URL}?prefix=rp{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("rp-gw")
    gateway = Gateway(data_dir=data_dir, port=free_port(), store=store)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        if store is not None:
            drop_redis_prefix(store)


@pytest.fixture(scope="session")
def worker_pool(gw: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    pool = WorkerPool(gw, tmp_path_factory.mktemp("rp-workers"))
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def sync_worker(worker_pool: WorkerPool) -> RunpodWorker:
    return worker_pool.get("sync")


@pytest.fixture
def async_worker(worker_pool: WorkerPool) -> RunpodWorker:
    return worker_pool.get("async")


@pytest.fixture
def gen_aggregate_worker(worker_pool: WorkerPool) -> RunpodWorker:
    return worker_pool.get("gen_aggregate")


@pytest.fixture
def gen_plain_worker(worker_pool: WorkerPool) -> RunpodWorker:
    return worker_pool.get("gen_plain")


@pytest.fixture
def idle_endpoint(gw: Gateway) -> str:
    """An endpoint that no worker serves: its jobs stay IN_QUEUE."""
    return gw.create_endpoint(name="rp-no-worker")["id"]


@pytest.fixture(scope="session")
def client_key(gw: Gateway) -> str:
    """A non-admin key with the `run` scope, as a RunPod user would hold."""
    with gw.client() as c:
        r = c.post("/v1/keys", json={"name": "sdk-client", "scopes": ["run"]})
        r.raise_for_status()
        return r.json()["key"]


@pytest.fixture(scope="session")
def sdk(gw: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkDriver]:
    driver = SdkDriver(gw, tmp_path_factory.mktemp("rp-client"))
    try:
        yield driver
    finally:
        driver.stop()
