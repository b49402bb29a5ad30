"""The supervisor's bookkeeping, driven tick by tick with a manual clock, a fake view and
fake processes (the real processes are in tests/e2e/test_fleet.py)."""

from __future__ import annotations

import io
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from podium.clock import ManualClock
from podium.endpoints import EndpointSpec
from podium.endpoints.templates import launch_for
from podium.endpoints.worker_env import worker_env
from podium.fleet.gpus import Gpu, Inventory
from podium.fleet.local import LocalBackend
from podium.fleet.scaling import Phase, QueueStats
from podium.fleet.settings import FleetSettings
from podium.fleet.status import WorkerStatus
from podium.fleet.supervisor import Supervisor
from podium.fleet.view import FleetEndpoint
from podium.logs.markers import MARKER_ENV
from podium.store.base import WorkerInfo
from podium.worker.runtime import CANNOT_START, EXIT_CANNOT_START

_pids = itertools.count(1000)


@dataclass
class FakeProcess:
    argv: list[str]
    env: dict[str, str]
    pid: int = field(default_factory=lambda: next(_pids))
    code: int | None = None
    terminated: bool = False
    killed: bool = False
    stdout: io.BytesIO | None = None  # what it wrote (None: nothing to read)

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.terminated = True

    def kill(self) -> None:
        self.killed = True
        self.code = -9


class MemorySink:
    """The log lines shipped for each worker, in order (by its RUNPOD_POD_ID)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def for_env(self, env) -> object:
        sink, worker_id = self, env["RUNPOD_POD_ID"]

        class _One:
            def send(self, lines, dropped) -> None:
                with sink.lock:
                    sink.lines.setdefault(worker_id, []).extend(ln.text for ln in lines)

        return _One()

    def wait_for(self, worker_id: str, text: str, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.lines.get(worker_id, []))
            if any(text in line for line in got):
                return got
            time.sleep(0.01)
        raise AssertionError(f"no line with {text!r} for {worker_id}: {self.lines}")


@dataclass
class FakeView:
    specs: dict[str, EndpointSpec] = field(default_factory=dict)
    queues: dict[str, QueueStats] = field(default_factory=dict)
    seen: dict[str, list[WorkerInfo]] = field(default_factory=dict)
    published: dict[str, list[WorkerStatus]] = field(default_factory=dict)
    stopped: dict[str, dict[str, float]] = field(default_factory=dict)

    async def endpoints(self) -> list[FleetEndpoint]:
        return [
            FleetEndpoint(i, s, launch_for(s, None, python="py")) for i, s in self.specs.items()
        ]

    async def queue(self, endpoint_id: str) -> QueueStats:
        return self.queues.get(endpoint_id, QueueStats())

    async def workers(self, endpoint_id: str) -> list[WorkerInfo]:
        return self.seen.get(endpoint_id, [])

    def worker_env(self, endpoint_id: str, worker_id: str, gpu: str) -> dict[str, str]:
        return worker_env("http://gw:1", endpoint_id, worker_id, gpu, "pw_derived", 1000)

    def publish(self, report) -> None:
        self.published = report.workers
        self.stopped = report.stopped


class Harness:
    def __init__(self, tmp_path: Path, inventory: Inventory, **settings) -> None:
        self.clock = ManualClock()
        self.view = FakeView()
        self.procs: list[FakeProcess] = []
        self.output: bytes | None = None  # what the next processes write
        self.logs = MemorySink()
        fleet = FleetSettings(**settings)
        self.backend = LocalBackend(
            tmp_path,
            lambda: inventory,
            spawn=self._spawn,
            base_env={
                "PATH": "/bin",
                "HOME": "/home/me",
                "PODIUM_STORE": "redis://secret@x",
                "RUNPOD_AI_API_KEY": "leak",
                "HF_TOKEN": "hf",
            },
            log_sink=self.logs.for_env,
        )
        self.sup = Supervisor(self.view, fleet, self.clock, self.backend)

    def _spawn(self, argv, env, log_file) -> FakeProcess:
        assert log_file is None  # the output goes to a pipe that a LogShipper reads
        p = FakeProcess(list(argv), dict(env))
        if self.output is not None:  # a pipe that has ended: what the process wrote
            p.stdout = io.BytesIO(self.output)
        self.procs.append(p)
        return p

    async def tick(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        await self.sup.tick()

    def workers(self, ep: str = "ep1") -> list[WorkerStatus]:
        return self.view.published.get(ep, [])

    def phases(self, ep: str = "ep1") -> list[str]:
        return sorted(w.phase.value for w in self.workers(ep))

    def alive(self) -> list[FakeProcess]:
        return [p for p in self.procs if p.code is None]

    def ping(self, ep: str, jobs: dict[str, int] | None = None) -> None:
        """The gateway saw every live worker of `ep` now (holding `jobs[id]` jobs)."""
        jobs = jobs or {}
        self.view.seen[ep] = [
            WorkerInfo(ep, w.id, self.clock.now(), jobs=jobs.get(w.id, 0))
            for w in self.workers(ep)
            if w.pid is not None
        ]


CPU = Inventory((), "none", "no GPU")
TWO_GPUS = Inventory((Gpu(0, "Fake A", 24564), Gpu(1, "Fake B", 24564)), "config")


def custom(**kw) -> EndpointSpec:
    return EndpointSpec(name="t", template_id="custom", command="python worker.py --x 1", **kw)


async def test_starts_workers_min_with_the_protocol_env(tmp_path):
    h = Harness(tmp_path, TWO_GPUS)
    h.view.specs["ep1"] = custom(workers_min=1, env={"MY_VAR": "v"})
    await h.tick()
    assert h.phases() == ["starting"]
    (p,) = h.procs
    assert p.argv == ["python", "worker.py", "--x", "1"]
    env = p.env
    wid = h.workers()[0].id
    assert env["RUNPOD_POD_ID"] == wid and env["RUNPOD_ENDPOINT_ID"] == "ep1"
    assert env["RUNPOD_AI_API_KEY"] == "pw_derived"
    assert env["RUNPOD_WEBHOOK_GET_JOB"] == "http://gw:1/v2/ep1/job-take/$ID?gpu=Fake+A"
    assert env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == "true"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["MY_VAR"] == "v" and env["HF_TOKEN"] == "hf" and env["PATH"] == "/bin"
    assert "PODIUM_STORE" not in env  # the gateway's own settings stay with the gateway
    assert env["HOME"] == str(tmp_path / "workers" / wid)
    assert env["XDG_CACHE_HOME"] == "/home/me/.cache"
    h.ping("ep1")
    await h.tick(0.5)
    assert h.phases() == ["ready"]


async def test_gpus_are_never_shared_and_a_worker_waits_throttled(tmp_path):
    h = Harness(tmp_path, TWO_GPUS)
    h.view.specs["a"] = custom(workers_min=1)
    h.view.specs["b"] = custom(workers_min=2)
    await h.tick()
    gpus = [w.gpus for ep in ("a", "b") for w in h.workers(ep)]
    assert sorted(g for g in gpus if g) == [(0,), (1,)]
    assert sorted(w.phase.value for w in h.workers("b")) in (
        ["starting", "throttled"],
        ["starting", "starting"],
    )
    assert [w.phase for w in h.workers("a") + h.workers("b")].count(Phase.THROTTLED) == 1
    throttled = next(w for w in h.workers("b") if w.phase is Phase.THROTTLED)
    assert "held by another worker" in (throttled.reason or "")
    # endpoint a goes away: its GPU is free once its worker has exited
    del h.view.specs["a"]
    await h.tick(0.5)
    (pa,) = [p for p in h.procs if p.env["RUNPOD_ENDPOINT_ID"] == "a"]
    assert pa.terminated
    await h.tick(0.5)
    assert all(w.phase is Phase.STARTING for w in h.workers("b")) is False  # still held
    pa.code = 0
    await h.tick(0.5)
    await h.tick(0.5)
    assert sorted(w.gpus for w in h.workers("b")) == [(0,), (1,)]
    assert h.phases("b") == ["starting", "starting"]


async def test_cpu_only_machine_runs_cpu_workers(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = custom(workers_min=2, gpu_ids="0")
    await h.tick()
    assert h.phases() == ["starting", "starting"]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in h.procs] == ["", ""]
    assert "gpu=cpu" in h.procs[0].env["RUNPOD_WEBHOOK_PING"]


async def test_startup_crashes_back_off_then_unhealthy_and_stay_down(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = custom(workers_min=1, workers_max=1)
    await h.tick()
    starts = [h.clock.now()]
    for _ in range(20):  # 10 s of ticks; the process dies before it is ever seen
        for p in h.alive():
            p.code = 1
        n = len(h.procs)
        await h.tick(0.5)
        if len(h.procs) > n:
            starts.append(h.clock.now())
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(starts)]
    assert gaps == [1.5, 2.5]  # backoff 1 s then 2 s (+ the tick that noticed the exit)
    (w,) = h.workers()
    assert w.phase is Phase.UNHEALTHY and w.pid is None and w.restarts == 2
    assert "not restarted" in (w.reason or "") and "code 1" in (w.reason or "")
    assert len(h.procs) == 3
    # changing the endpoint's settings gives it another chance
    h.view.specs["ep1"] = custom(workers_min=1, workers_max=1, idle_timeout=9)
    await h.tick(0.5)
    assert h.phases() == ["starting"] and len(h.procs) == 4


async def test_a_crash_after_ready_restarts_after_one_second(tmp_path):
    h = Harness(tmp_path, TWO_GPUS)
    h.view.specs["ep1"] = custom(workers_min=1)
    await h.tick()
    h.ping("ep1")
    await h.tick(0.5)
    (w,) = h.workers()
    assert w.phase is Phase.READY
    h.procs[0].code = -9  # kill -9
    await h.tick(0.5)
    (w2,) = h.workers()
    assert w2.phase is Phase.BACKOFF and w2.id == w.id and w2.gpus == ()
    await h.tick(0.5)
    assert h.workers()[0].phase is Phase.BACKOFF
    await h.tick(0.5)
    (w3,) = h.workers()
    assert w3.phase is Phase.STARTING and w3.restarts == 1 and w3.gpus == (0,)
    assert h.procs[1].env["RUNPOD_POD_ID"] == w.id  # the same worker, restarted


async def test_idle_workers_drain_after_idle_timeout_busy_ones_stay(tmp_path):
    h = Harness(tmp_path, CPU, drain_extra_s=30)
    h.view.specs["ep1"] = custom(
        workers_max=2,
        idle_timeout=2,
        scaler_type="REQUEST_COUNT",
        scaler_value=1,
        execution_timeout_ms=10_000,
    )
    h.view.queues["ep1"] = QueueStats(queued=2)
    await h.tick()
    assert h.phases() == ["starting", "starting"]
    a, b = (w.id for w in h.workers())
    h.view.queues["ep1"] = QueueStats(in_progress=2)
    h.ping("ep1", {a: 1, b: 1})
    await h.tick(0.5)
    assert h.phases() == ["ready", "ready"]
    # b finishes; a keeps running
    h.view.queues["ep1"] = QueueStats(in_progress=1)
    for _ in range(4):  # b is idle from the first of these ticks on
        h.ping("ep1", {a: 1})
        await h.tick(0.5)
    assert not any(p.terminated for p in h.procs)  # 1.5 s idle < 2 s
    h.ping("ep1", {a: 1})
    await h.tick(0.5)
    pa, pb = h.procs
    assert pb.terminated and not pa.terminated
    assert {w.id: w.phase.value for w in h.workers()} == {a: "ready", b: "draining"}
    # a drain that takes longer than executionTimeout + drain_extra_s is killed
    await h.tick(39)
    assert not pb.killed
    await h.tick(2)
    assert pb.killed and not pa.killed
    await h.tick(0.5)
    assert [w.id for w in h.workers()] == [a]
    assert list(h.view.stopped["ep1"]) == [b]  # /health no longer counts b


async def test_changed_command_replaces_workers(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = custom(workers_min=1)
    await h.tick()
    h.ping("ep1")
    await h.tick(0.5)
    h.view.specs["ep1"] = EndpointSpec(
        name="t", template_id="custom", command="python v2.py", workers_min=1
    )
    await h.tick(0.5)
    assert h.procs[0].terminated
    assert h.procs[1].argv == ["python", "v2.py"]
    assert h.phases() == ["draining", "starting"]


async def test_stop_terminates_then_kills(tmp_path):
    h = Harness(tmp_path, CPU, shutdown_grace_s=0.1)
    h.view.specs["ep1"] = custom(workers_min=2)
    await h.tick()
    h.procs[0].terminate = lambda: setattr(h.procs[0], "code", 0)  # exits on SIGTERM
    await h.sup.stop()
    assert h.procs[0].code == 0 and not h.procs[0].killed
    assert h.procs[1].terminated and h.procs[1].killed


async def test_spawn_failure_counts_as_a_startup_crash(tmp_path):
    h = Harness(tmp_path, CPU)

    def broken(argv, env, log_file):
        raise FileNotFoundError(2, "No such file or directory")

    h.backend._spawn = broken
    h.view.specs["ep1"] = custom(workers_min=1, workers_max=1)
    for _ in range(12):
        await h.tick(0.5)
    (w,) = h.workers()
    assert w.phase is Phase.UNHEALTHY and "cannot start" in (w.reason or "")
    lines = h.logs.wait_for(w.id, "cannot start")
    assert lines[0].startswith(f"--- podium: worker {w.id} start")


async def test_each_run_gets_a_marker_and_its_exit_is_in_its_log(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = custom(workers_min=1, workers_max=1)
    await h.tick()
    (p,) = h.procs
    (w,) = h.workers()
    assert p.env[MARKER_ENV].startswith("podium-log-marker-")
    p.code = 3
    await h.tick()
    lines = h.logs.wait_for(w.id, "exited with code 3")
    assert lines == [
        f"--- podium: worker {w.id} start, GPUs []: python ---",
        f"--- podium: worker {w.id} exited with code 3 ---",
    ]


async def test_a_worker_that_cannot_start_says_why_from_its_own_output(tmp_path):
    h = Harness(tmp_path, CPU)
    h.output = f"loading\n{CANNOT_START}no weights at /m\n".encode()
    h.view.specs["ep1"] = custom(workers_min=1, workers_max=1)
    await h.tick()
    (p,) = h.procs
    p.code = EXIT_CANNOT_START
    await h.tick()
    (w,) = h.workers()
    assert w.phase is Phase.UNHEALTHY
    assert w.reason == "no weights at /m (updating the endpoint retries)"
    lines = h.logs.wait_for(w.id, "exited with code 78")
    assert lines[-3:] == ["loading", f"{CANNOT_START}no weights at /m", lines[-1]]


@pytest.mark.parametrize("model", [None, "tiny"])
def test_sd15_command(model):
    spec = EndpointSpec(name="sd", template_id="sd15", model=model)
    launch = launch_for(spec, None, python="py")
    assert launch.argv == (
        "py",
        "-m",
        "podium.worker",
        "--template",
        "sd15",
        "--model",
        model or "auto",
    )
