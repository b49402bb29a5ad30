"""What a gateway does to its data dir before it serves: private files, whatever the umask."""

from __future__ import annotations

import os
import stat

import httpx

from podium.clock import ManualClock
from podium.gateway import create_app
from podium.settings import Settings


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def _serve_one_job(data_dir) -> None:
    app = create_app(Settings(data_dir=data_dir), clock=ManualClock(), run_background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        admin = {"Authorization": app.state.new_admin_key or ""}
        ep = (await http.post("/v1/endpoints", json={"name": "p"}, headers=admin)).json()
        r = await http.post(f"/v2/{ep['id']}/run", json={"input": {"secret": 1}}, headers=admin)
        assert r.status_code == 200
        # while the gateway runs, the WAL and its index exist too
        for name in ("podium.db", "podium.db-wal", "podium.db-shm", "admin.key"):
            assert _mode(data_dir / name) == 0o600, name
        assert _mode(data_dir) == 0o700


async def test_data_dir_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    try:
        await _serve_one_job(tmp_path / "fresh")
    finally:
        os.umask(old)


async def test_an_existing_world_readable_data_dir_is_made_private(tmp_path):
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / "podium.db").touch()
    os.chmod(data / "podium.db", 0o644)
    await _serve_one_job(data)
