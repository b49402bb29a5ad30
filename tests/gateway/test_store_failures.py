"""A store that fails says why: Redis out of memory, and a Redis that came back empty.
Each test runs its own redis-server (the shared one must not be starved or restarted)."""

from __future__ import annotations

import gc
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import redis

from podium.clock import ManualClock
from podium.gateway import create_app
from podium.gateway.instance import StoreLost
from podium.settings import Settings
from tests.e2e.conftest import wait_until

pytestmark = [
    pytest.mark.redis,
    # redis-py leaves the sockets of its pooled connections to a Redis that was killed or
    # restarted for the garbage collector (a third-party ResourceWarning, not ours)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_redis_leftovers() -> Iterator[None]:
    """Those sockets are collected here, under this module's filter: left to the garbage
    collector they were warned about in whichever test ran next (a flake)."""
    yield
    gc.collect()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(tmp_path, *args: str) -> Iterator[Callable[[], str]]:
    """A private redis-server without persistence; yields `restart()` -> its URL."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(tmp_path), *args]
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port, socket_connect_timeout=1)
        try:
            wait_until(lambda: _pings(client), what="the private redis-server")
        finally:
            client.close()
        return f"redis://127.0.0.1:{port}/0"

    start()
    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


async def _past_stale_connections(call) -> httpx.Response:
    """After a restart, each pooled connection fails once ("cannot be reached": the
    gateway cannot know whether a script ran) before a new one is made. Bounded."""
    for _ in range(70):  # more than the pool's connections
        r = await call()
        if "cannot be reached" not in r.text:
            return r
    raise AssertionError(r.text)


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(settings, clock=ManualClock(), run_background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        yield http, app


async def test_redis_out_of_memory_answers_503_and_loses_nothing(tmp_path):
    with redis_server(tmp_path, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction") as start:
        url = start()
        async with gateway(Settings(data_dir=tmp_path / "d", store=url)) as (http, app):
            admin = {"Authorization": app.state.new_admin_key}
            ep = (await http.post("/v1/endpoints", json={"name": "m"}, headers=admin)).json()
            accepted, refused = [], None
            for _ in range(200):  # bounded: 3 MB fills long before 200 × 64 KB
                r = await http.post(
                    f"/v2/{ep['id']}/run", json={"input": {"pad": "x" * 65536}}, headers=admin
                )
                if r.status_code != 200:
                    refused = r
                    break
                accepted.append(r.json()["id"])
            assert refused is not None and refused.status_code == 503, refused and refused.text
            assert "out of memory" in refused.json()["error"]
            assert accepted
            for job_id in accepted:  # every acknowledged job is still there
                st = await http.get(f"/v2/{ep['id']}/status/{job_id}", headers=admin)
                assert st.json()["status"] == "IN_QUEUE"


async def test_redis_that_restarts_empty_is_named_not_unknown_keys(tmp_path):
    data = tmp_path / "d"
    with redis_server(tmp_path) as start:
        url = start()
        async with gateway(Settings(data_dir=data, store=url)) as (http, app):
            key = app.state.new_admin_key
            admin = {"Authorization": key}
            ep = (await http.post("/v1/endpoints", json={"name": "m"}, headers=admin)).json()
            assert (await http.get("/healthz")).status_code == 200
            start()  # Redis restarts and comes back empty
            r = await _past_stale_connections(
                lambda: http.get(f"/v2/{ep['id']}/health", headers=admin)
            )
            assert r.status_code == 503
            assert "lost its data" in r.json()["error"]
            assert "--accept-empty-store" in r.json()["error"]
            worker = {"Authorization": ep["workerToken"]}
            r = await http.get(f"/v2/{ep['id']}/job-take/w1?hold=0", headers=worker)
            assert r.status_code == 503 and "lost its data" in r.json()["error"]
            r = await http.get("/healthz")
            assert r.status_code == 503 and "lost its data" in r.json()["error"]
        # A gateway started on the empty store refuses, until told to begin anew.
        with pytest.raises(StoreLost, match="lost its data"):
            async with gateway(Settings(data_dir=data, store=url)):
                pass
        async with gateway(Settings(data_dir=data, store=url, accept_empty_store=True)) as (
            http,
            app,
        ):
            assert (await http.get("/healthz")).status_code == 200
            assert app.state.new_admin_key  # a new admin key for the new store


async def test_the_data_coming_back_heals_a_running_gateway(tmp_path):
    with redis_server(tmp_path) as start:
        url = start()
        client = redis.Redis.from_url(url)
        try:
            async with gateway(Settings(data_dir=tmp_path / "d", store=url)) as (http, app):
                saved = {k: client.dump(k) for k in client.keys("*")}
                start()  # empty
                r = await _past_stale_connections(lambda: http.get("/healthz"))
                assert r.status_code == 503 and "lost its data" in r.json()["error"]
                client.close()
                client = redis.Redis.from_url(url)
                for k, v in saved.items():  # an operator restores the backup
                    client.restore(k, 0, v)
                assert (await http.get("/healthz")).status_code == 200
                r = await http.get(
                    "/v1/endpoints", headers={"Authorization": app.state.new_admin_key}
                )
                assert r.status_code == 200
        finally:
            client.close()
