"""The `podium` CLI, driven with Typer's runner against an in-process gateway: the app runs
inside the test (Starlette's TestClient), the CLI's client talks to it through
`podium.cli.base.in_process` instead of the network."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from podium.cli import app as cli_app
from podium.cli import base
from podium.gateway import create_app
from podium.settings import ADMIN_KEY_FILE, Settings


class InProcess(TestClient):
    """A TestClient that takes the per-request timeouts the CLI's client passes (a long
    poll's) and drops them: nothing crosses a network here."""

    def request(self, method: str, url: Any, **kwargs: Any) -> httpx.Response:
        kwargs.pop("timeout", None)
        return super().request(method, url, **kwargs)


@dataclass
class Cli:
    runner: CliRunner
    http: TestClient
    admin_key: str
    data_dir: Path

    def __call__(self, *args: str, key: str | None = None, **env: str) -> Result:
        return self.runner.invoke(
            cli_app,
            list(args),
            env={
                "PODIUM_URL": "http://testserver",
                "PODIUM_API_KEY": key or self.admin_key,
                "PODIUM_DATA_DIR": str(self.data_dir),
                **env,
            },
        )

    def api(self, key: str | None = None) -> httpx.Client:
        """The same gateway, called directly (to arrange what a test needs)."""
        return InProcess(
            self.http.app, headers={"Authorization": f"Bearer {key or self.admin_key}"}
        )

    def worker(self, token: str) -> httpx.Client:
        return InProcess(self.http.app, headers={"Authorization": token})

    def endpoint(self, **spec: Any) -> dict[str, Any]:
        r = self.api().post("/v1/endpoints", json={"name": "cli", **spec})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    data = tmp_path / "data"
    app = create_app(Settings(data_dir=data, take_hold_s=0.2), run_background=False)
    with TestClient(app) as http:  # runs the gateway's lifespan (bootstrap: the admin key)

        def connect(api_key: str | None) -> httpx.Client:
            headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
            return InProcess(app, base_url="http://testserver", headers=headers)

        monkeypatch.setattr(base, "in_process", connect)
        yield Cli(CliRunner(), http, (data / ADMIN_KEY_FILE).read_text().strip(), data)
