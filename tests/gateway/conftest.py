"""In-process gateway (ASGI) on every store backend, with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from podium.clock import ManualClock
from podium.gateway import create_app
from podium.gateway.reaper import reap_once
from podium.gateway.state import GatewayState
from podium.settings import Settings
from tests.conftest import STORE_PARAMS, drop_redis_prefix, make_store


@dataclass
class Api:
    http: httpx.AsyncClient
    state: GatewayState
    clock: ManualClock
    admin_key: str
    endpoint: dict[str, Any]

    @property
    def ep(self) -> str:
        return self.endpoint["id"]

    @property
    def token(self) -> str:
        return self.endpoint["workerToken"]

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    def worker(self) -> dict[str, str]:
        return {"Authorization": self.token}

    async def run(self, payload: Any = None, key: str | None = None, **kw: Any) -> httpx.Response:
        body = {"input": {"x": 1}} if payload is None else payload
        return await self.http.post(f"/v2/{self.ep}/run", json=body, headers=self.auth(key), **kw)

    async def take(self, worker_id: str = "w1", hold: float = 0) -> httpx.Response:
        return await self.http.get(
            f"/v2/{self.ep}/job-take/{worker_id}?gpu=cpu&job_in_progress=0&hold={hold}",
            headers=self.worker(),
        )

    async def done(
        self, job_id: str, body: Any, worker_id: str = "w1", stream: bool = False
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return await self.http.post(
            f"/v2/{self.ep}/job-done/{worker_id}/{job_id}?gpu=cpu&isStream={str(stream).lower()}",
            content=raw,
            headers={**self.worker(), "Content-Type": "application/x-www-form-urlencoded"},
        )

    async def status(self, job_id: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            f"/v2/{self.ep}/status/{job_id}", params=params, headers=self.auth()
        )

    async def reap(self) -> None:
        await reap_once(self.state)


async def make_api(backend: str, tmp_path, clock: ManualClock, **settings: Any) -> Any:
    store = await make_store(backend, tmp_path, clock)
    s = Settings(data_dir=tmp_path / "data", take_hold_s=0.2, **settings)
    app = create_app(s, store=store, clock=clock, run_background=False)
    return app


@pytest.fixture(params=STORE_PARAMS)
async def api(request, tmp_path, clock) -> AsyncIterator[Api]:
    app = await make_api(request.param, tmp_path, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            admin = app.state.new_admin_key
            r = await http.post(
                "/v1/endpoints",
                json={"name": "test"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.status_code == 200, r.text
            yield Api(http, app.state.podium, clock, admin, r.json())
    drop_redis_prefix(app.state.podium.store)
