"""Fixtures for the RunPod SDK compatibility tests: one gateway for the directory, one
SDK worker process per handler (started together on first use), one SDK client driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Gateway, free_port
from tests.runpod_compat.harness import RUNPOD_PY, RunpodWorker, SdkDriver, WorkerPool


@pytest.fixture(scope="session")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if not RUNPOD_PY.exists():
        pytest.skip(f"the runpod SDK venv is missing ({RUNPOD_PY})")
    data_dir = tmp_path_factory.mktemp("rp-gw")
    gateway = Gateway(data_dir=data_dir, port=free_port())
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


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
