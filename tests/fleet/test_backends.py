"""One contract for every fleet backend (fleet/backend.py), run on `local` (processes on
this machine, a fake inventory of two GPUs) and on `ray` (the session's real Ray cluster:
two worker nodes of two fake GPUs each), with real worker processes
(handlers/envdump.py). The supervisor above a backend is tested in test_supervisor.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from podium.board import CANNOT_START, EXIT_CANNOT_START, Gpu, Inventory
from podium.endpoints.worker_env import worker_env
from podium.fleet.backend import Backend, Placement, Slot
from podium.fleet.local import LocalBackend
from podium.fleet.settings import FleetSettings

ENVDUMP = Path(__file__).parent / "handlers" / "envdump.py"
WAIT_S = 60.0


@dataclass
class Contract:
    backend: Backend
    gpus: int  # every GPU workers can be placed on
    slots: list[Slot] = field(default_factory=list)

    def placement(
        self, tmp: Path, *args: str, gpu_count: int = 1, slot: int = 0, gpu_ids: str = ""
    ) -> Placement:
        ep = f"ct{uuid.uuid4().hex[:8]}"
        wid = f"{ep[:6]}-{uuid.uuid4().hex[:8]}"
        return Placement(
            endpoint_id=ep,
            worker_id=wid,
            slot=slot,
            argv=(sys.executable, str(ENVDUMP), str(tmp / f"{wid}.json"), *args),
            env=lambda gpu: {
                "CONTRACT_VAR": "yes",
                **worker_env("http://gw:1", ep, wid, gpu, "pw_token", 1000),
            },
            gpu_ids=gpu_ids,
            gpu_count=gpu_count,
        )

    async def place(self, p: Placement) -> Slot | str:
        placed = self.backend.place(p)
        if not isinstance(placed, str):
            self.slots.append(placed)
        return placed

    async def until(self, what: str, check: Callable[[], object]) -> None:
        """Refresh the backend until `check()` holds (bounded)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            await self.backend.refresh(self.slots)
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")

    async def running(self, slot: Slot) -> None:
        await self.until("the worker runs", lambda: slot.pid is not None and slot.gpus)

    async def cleanup(self) -> None:
        for s in self.slots:
            if s.poll() is None:
                s.kill()
        if self.slots:
            await self.until(
                "every worker ended", lambda: all(s.poll() is not None for s in self.slots)
            )
        for s in self.slots:
            s.release()


@pytest.fixture(scope="module")
def ray_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    cluster = request.getfixturevalue("ray_cluster")
    import ray

    from podium.fleet.raycluster import RayBackend

    settings = FleetSettings(backend="ray", ray_namespace="podium-contract")
    ray.init(
        address=cluster.address,
        namespace=settings.ray_namespace,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield RayBackend(settings)
    finally:
        ray.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.e2e])])
async def contract(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        inventory = Inventory((Gpu(0, "Fake", 24564), Gpu(1, "Fake", 24564)), "config")
        backend: Backend = LocalBackend(tmp_path / "data", lambda: inventory)
        c = Contract(backend, gpus=2)
    else:
        c = Contract(request.getfixturevalue("ray_backend"), gpus=4)
    await c.backend.refresh([])
    try:
        yield c
    finally:
        await c.cleanup()


def _env(tmp: Path, p: Placement) -> dict[str, str]:
    return json.loads((tmp / f"{p.worker_id}.json").read_text())


async def test_a_worker_gets_its_gpus_env_and_an_isolated_home(contract: Contract, tmp_path):
    p = contract.placement(tmp_path)
    slot = await contract.place(p)
    assert not isinstance(slot, str), slot
    await contract.running(slot)
    await contract.until("the env file", lambda: (tmp_path / f"{p.worker_id}.json").exists())
    env = _env(tmp_path, p)
    assert len(slot.gpus) == 1 and slot.node
    assert env["CUDA_VISIBLE_DEVICES"] == str(slot.gpus[0])
    assert env["CONTRACT_VAR"] == "yes" and env["RUNPOD_POD_ID"] == p.worker_id
    assert "gpu=" in env["RUNPOD_WEBHOOK_PING"]
    assert env["HOME"].endswith(p.worker_id)
    assert not any(k.startswith("RAY_") for k in env)
    assert slot.poll() is None
    slot.terminate()  # a drain: the program exits 0 on SIGTERM
    await contract.until("the drained worker's exit", lambda: slot.poll() is not None)
    assert slot.poll() == 0


async def test_an_exit_code_and_the_last_output_are_reported(contract: Contract, tmp_path):
    p = contract.placement(tmp_path, str(EXIT_CANNOT_START), CANNOT_START + "no model")
    slot = await contract.place(p)
    assert not isinstance(slot, str), slot
    await contract.until("the exit", lambda: slot.poll() is not None)
    assert slot.poll() == EXIT_CANNOT_START
    assert any("cannot start: no model" in line for line in slot.last_lines(50))


async def test_workers_never_share_a_gpu_and_no_capacity_says_why(contract: Contract, tmp_path):
    slots = []
    for i in range(contract.gpus):
        placed = await contract.place(contract.placement(tmp_path, slot=i))
        assert not isinstance(placed, str), placed
        slots.append(placed)
    for s in slots:
        await contract.running(s)
    held = [(s.node, g) for s in slots for g in s.gpus]
    assert len(held) == len(set(held)) == contract.gpus
    extra = await contract.place(contract.placement(tmp_path, slot=contract.gpus))
    if not isinstance(extra, str):  # placed, but the backend cannot run it yet
        await contract.until("a reason", lambda: extra.waiting is not None)
        extra = extra.waiting
    assert "GPU" in extra


async def test_a_worker_asking_for_more_gpus_than_any_node_has_says_why(
    contract: Contract, tmp_path
):
    placed = await contract.place(contract.placement(tmp_path, gpu_count=3))
    if not isinstance(placed, str):
        await contract.until("a reason", lambda: placed.waiting is not None)
        placed = placed.waiting
    assert "3" in placed and "GPU" in placed


async def test_gpu_ids_pick_gpus_by_memory_or_say_none_fits(contract: Contract, tmp_path):
    """The fake GPUs have 24564 MiB (a 24 GB card): `24GB` fits, `80GB` never does."""
    fits = await contract.place(contract.placement(tmp_path, gpu_ids="24GB"))
    assert not isinstance(fits, str), fits
    await contract.running(fits)
    placed = await contract.place(contract.placement(tmp_path, gpu_ids="80GB", slot=1))
    if not isinstance(placed, str):
        await contract.until("a reason", lambda: placed.waiting is not None)
        placed = placed.waiting
    assert "gpuIds" in placed


async def test_a_new_controller_adopts_what_runs(contract: Contract, tmp_path):
    p = contract.placement(tmp_path)
    slot = await contract.place(p)
    assert not isinstance(slot, str)
    await contract.running(slot)
    await contract.until("the env file", lambda: (tmp_path / f"{p.worker_id}.json").exists())
    adopted = [a for a in await contract.backend.adopt() if a.endpoint_id == p.endpoint_id]
    if not contract.backend.shared:  # local workers die with their gateway: nothing to adopt
        assert adopted == []
        return
    (a,) = adopted
    assert (a.worker_id, a.slot_index, a.draining) == (p.worker_id, 0, False)
    assert a.slot.pid == slot.pid and a.slot.gpus == slot.gpus
    # the new controller drives it: a drain ends it
    contract.slots = [a.slot]
    await contract.backend.refresh(contract.slots)
    assert a.slot.poll() is None
    a.slot.terminate()
    await contract.until("the adopted worker's exit", lambda: a.slot.poll() is not None)
    assert a.slot.poll() == 0 and slot.poll() is None  # the old handle learnt nothing
