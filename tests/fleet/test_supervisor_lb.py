"""The supervisor's load-balancing workers, tick by tick (a manual clock, fake processes):
their ports, health checks against a real HTTP responder on loopback (200 ready, 204
initializing, else unhealthy), what it announces for the gateways' proxies, and scaling by
the requests every gateway has waiting and in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from podium.board import Phase
from podium.endpoints import EndpointSpec
from podium.store.records import LbLoad
from tests.fleet.test_supervisor import CPU, Harness


class Responder:
    """Answers every request on a port with `status` (None: closes without an answer)."""

    def __init__(self) -> None:
        self.status: int | None = 204
        self.paths: list[str] = []
        self.servers: list[asyncio.Server] = []

    async def listen(self, port: int) -> None:
        self.servers.append(await asyncio.start_server(self._answer, "127.0.0.1", port))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.paths.append(head.split(b" ")[1].decode())
        if self.status is not None:
            head = f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            writer.write(head.encode())
            await writer.drain()
        writer.close()

    async def close(self) -> None:
        for s in self.servers:
            s.close()
            await s.wait_closed()
        self.servers.clear()


@pytest.fixture
async def responder() -> AsyncIterator[Responder]:
    r = Responder()
    yield r
    await r.close()


def lb(**kw) -> EndpointSpec:
    return EndpointSpec(name="lb", template_id="custom", command="python app.py").updated(
        {"type": "LOAD_BALANCER", **kw}
    )


async def test_a_worker_gets_its_ports_and_is_ready_on_its_first_200(tmp_path, responder):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = lb(workers_min=1, gpu_count=0, env={"HEALTH_CHECK_PATH": "/health"})
    await h.tick()
    (p,) = h.procs
    port = int(p.env["PORT"])
    assert p.env["PORT_HEALTH"] == str(port) and p.env["HEALTH_CHECK_PATH"] == "/health"
    await h.tick(1.0)  # nothing answers yet: still starting, nothing announced
    assert h.phases() == ["starting"] and h.view.announced == []
    await responder.listen(port)
    await h.tick(1.0)  # 204: initializing (not routed to)
    (w,) = h.workers()
    assert w.phase is Phase.STARTING and w.health == "initializing"
    assert h.view.announced[-1][2:] == (
        "initializing",
        {"url": f"http://127.0.0.1:{port}", "health": "initializing", "coldStartS": None},
    )
    responder.status = 200
    await h.tick(2.5)  # cold start: from the first 204 to the first 200
    (w,) = h.workers()
    assert w.phase is Phase.READY and w.health == "ready" and w.cold_start_s == 2.5
    ep, wid, state, info = h.view.announced[-1]
    assert (ep, wid, state, info["health"]) == ("ep1", w.id, "idle", "ready")
    assert set(responder.paths) == {"/health"}
    count = len(h.view.announced)
    await h.tick(0.2)  # nothing changed: not announced again until a third of a lease
    assert len(h.view.announced) == count
    await h.tick(1.0)
    assert len(h.view.announced) == count + 1


async def test_a_health_port_of_its_own(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = lb(workers_min=1, gpu_count=0, env={"PORT": "80", "PORT_HEALTH": "81"})
    await h.tick()
    (p,) = h.procs
    assert p.env["PORT"] != p.env["PORT_HEALTH"]


async def test_a_ready_worker_that_fails_its_checks_is_replaced(tmp_path, responder):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = lb(workers_min=1, gpu_count=0)
    await h.tick()
    responder.status = 200
    await responder.listen(int(h.procs[0].env["PORT"]))
    await h.tick(0.5)
    assert h.phases() == ["ready"]
    responder.status = 500
    await h.tick(0.5)
    await h.tick(0.5)
    assert h.phases() == ["ready"] and h.workers()[0].health == "unhealthy"
    assert h.view.announced[-1][2] == "unhealthy"  # out of the pool at once
    await h.tick(0.5)  # the third failure in a row: killed
    assert h.procs[0].killed
    await h.tick(0.5)  # its exit: a crash, restarted after the backoff
    assert h.phases() == ["backoff"]
    assert h.view.announced[-1][3]["health"] == "draining"  # withdrawn
    await h.tick(1.5)
    assert len(h.procs) == 2 and h.procs[1].env["PORT"] != ""


async def test_scales_by_requests_waiting_and_in_flight(tmp_path, responder):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = lb(workers_max=3, scaler_value=2, idle_timeout=5, gpu_count=0)
    await h.tick()
    assert h.procs == []  # no requests: no workers
    h.view.loads["ep1"] = LbLoad(waiting=3)  # a request waits: scale from zero
    await h.tick(0.5)
    assert h.phases() == ["starting", "starting"]  # ceil(3 / 2)
    responder.status = 200
    for p in h.procs:
        await responder.listen(int(p.env["PORT"]))
    a, b = (w.id for w in h.workers())
    h.view.loads["ep1"] = LbLoad(waiting=0, in_flight={a: 3})
    await h.tick(0.5)
    assert h.phases() == ["ready", "ready"]
    assert {w.id: w.in_flight for w in h.workers()} == {a: 3, b: 0}
    h.view.loads["ep1"] = LbLoad(in_flight={a: 1})
    await h.tick(6)  # b idle past idleTimeout: drained; a holds a request: kept
    assert h.phases() == ["draining", "ready"]
    drained = next(w for w in h.workers() if w.phase is Phase.DRAINING)
    assert drained.id == b and h.view.announced[-1][1:3] == (b, "unhealthy")
