"""Webhooks: signed, retried with backoff, refused for private addresses unless allowed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.gateway import create_app
from podium.gateway.reaper import reap_once
from podium.settings import Settings
from tests.conftest import make_store


class Receiver:
    """A real HTTP server on 127.0.0.1 that fails the first `fail_first` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.got = asyncio.Event()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def hook(request: Request) -> Response:
            self.calls.append((await request.body(), dict(request.headers)))
            if len(self.calls) <= self.fail_first:
                return Response(status_code=500)
            self.got.set()
            return Response(status_code=204)

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> Receiver:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task


async def _gateway(tmp_path, clock, allow_private: bool):
    store = await make_store("sqlite", tmp_path, clock)
    settings = Settings(
        data_dir=tmp_path / "d",
        allow_private_webhooks=allow_private,
        webhook_backoff_s=0.01,
        take_hold_s=0.1,
    )
    return create_app(settings, store=store, clock=clock, run_background=False)


async def _run_job(app, http, webhook: str, finish: bool = True):
    admin = {"Authorization": app.state.new_admin_key}
    ep = (await http.post("/v1/endpoints", json={"name": "w"}, headers=admin)).json()
    job = (
        await http.post(
            f"/v2/{ep['id']}/run", json={"input": {}, "webhook": webhook}, headers=admin
        )
    ).json()
    worker = {"Authorization": ep["workerToken"]}
    await http.get(f"/v2/{ep['id']}/job-take/w1?hold=0", headers=worker)
    if finish:
        await http.post(
            f"/v2/{ep['id']}/job-done/w1/{job['id']}", content=b'{"output": 5}', headers=worker
        )
    return ep, job


@pytest.mark.parametrize("fail_first", [0, 2])
async def test_webhook_signed_and_retried(tmp_path, clock, fail_first):
    app = await _gateway(tmp_path, clock, allow_private=True)
    async with (
        Receiver(fail_first) as rx,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        ep, job = await _run_job(app, http, rx.url)
        await asyncio.wait_for(rx.got.wait(), 5)
        # The sender has read the answer and let go of its connection before shutdown.
        await asyncio.wait_for(app.state.podium.webhooks.join(), 5)
    assert len(rx.calls) == fail_first + 1
    body, headers = rx.calls[-1]
    payload = json.loads(body)
    assert payload["id"] == job["id"] and payload["status"] == "COMPLETED"
    assert payload["output"] == 5
    expected = hmac.new(ep["webhookSecret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-podium-signature"] == f"sha256={expected}"


async def test_webhook_on_timeout_from_reaper(tmp_path, clock):
    app = await _gateway(tmp_path, clock, allow_private=True)
    async with (
        Receiver() as rx,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        _, job = await _run_job(app, http, rx.url, finish=False)
        assert job["status"] == "IN_QUEUE"
        clock.advance(700)  # past the default 600 s executionTimeout
        await reap_once(app.state.podium)
        await asyncio.wait_for(rx.got.wait(), 5)
        await asyncio.wait_for(app.state.podium.webhooks.join(), 5)
    assert json.loads(rx.calls[0][0])["status"] == "TIMED_OUT"


async def test_webhook_to_loopback_refused_at_submit(tmp_path, clock):
    # Refused with 400 when submitted, not accepted and then silently dropped.
    app = await _gateway(tmp_path, clock, allow_private=False)
    async with (
        Receiver() as rx,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        admin = {"Authorization": app.state.new_admin_key}
        ep = (await http.post("/v1/endpoints", json={"name": "w"}, headers=admin)).json()
        for url in (rx.url, "http://localhost:9/x", "http://[::1]/x", "http://10.0.0.1/x"):
            r = await http.post(
                f"/v2/{ep['id']}/run", json={"input": {}, "webhook": url}, headers=admin
            )
            assert r.status_code == 400, url
            assert "does not resolve to a public address" in r.json()["error"]
        counts = (await http.get(f"/v2/{ep['id']}/health", headers=admin)).json()["jobs"]
        assert counts["inQueue"] == 0  # nothing was queued
    assert rx.calls == []
