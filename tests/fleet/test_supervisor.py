"""The supervisor's bookkeeping, driven tick by tick with a manual clock, a fake view and
fake processes (the real processes are in tests/e2e/test_fleet.py)."""

from __future__ import annotations

import io
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from podium.board import (
    CANNOT_START,
    EXIT_CANNOT_START,
    Gpu,
    Inventory,
    Phase,
    WorkerInfo,
    WorkerStatus,
)
from podium.clock import ManualClock
from podium.endpoints import EndpointSpec
from podium.endpoints.templates import launch_for
from podium.endpoints.worker_env import worker_env
from podium.fleet.backend import Adopted, Placement
from podium.fleet.local import LocalBackend
from podium.fleet.scaling import QueueStats
from podium.fleet.settings import FleetSettings
from podium.fleet.supervisor import Supervisor
from podium.fleet.view import FleetEndpoint
from podium.logs.markers import MARKER_ENV
from podium.store.records import LbLoad

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
    note: str | None = None  # what it waits for (a container's pull)

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
    volume_root: str = "/volumes"
    lease_s: float = 3.0
    versions: dict[str, int] = field(default_factory=dict)  # endpointVersion by endpoint
    loads: dict[str, LbLoad] = field(default_factory=dict)  # load-balancing endpoints
    announced: list[tuple[str, str, str, dict]] = field(default_factory=list)

    async def lb_loads(self) -> dict[str, LbLoad]:
        return dict(self.loads)

    async def announce(self, endpoint_id: str, worker_id: str, state: str, info: dict) -> None:
        self.announced.append((endpoint_id, worker_id, state, dict(info)))

    async def endpoints(self) -> list[FleetEndpoint]:
        return [
            FleetEndpoint(i, s, launch_for(s, None, python="py"), version=self.versions.get(i, 1))
            for i, s in self.specs.items()
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
            cpu_workers=fleet.cpu_workers,
        )
        self.sup = Supervisor(self.view, fleet, self.clock, self.backend)

    def _spawn(self, argv, env, log_file) -> FakeProcess:
        assert log_file is None  # the output goes to a pipe that a LogShipper reads
        if any("\x00" in v for v in [*argv, *env, *env.values()]):
            raise ValueError("embedded null byte")  # as subprocess.Popen does
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


async def test_a_new_release_replaces_workers_a_batch_at_a_time(tmp_path):
    h = Harness(tmp_path, CPU)
    h.view.specs["ep1"] = custom(workers_min=4, workers_max=8)
    await h.tick()
    busy = h.workers()[0].id
    h.ping("ep1", jobs={busy: 1})  # the first one holds a job
    await h.tick(0.5)
    old = {w.id for w in h.workers()}
    assert h.phases() == ["ready"] * 4 and {w.version for w in h.workers()} == {1}
    h.view.versions["ep1"] = 2  # a release (same command: the version alone replaces)
    order: list[str] = []
    for _ in range(8):
        await h.tick(0.5)
        draining = [w.id for w in h.workers() if w.phase is Phase.DRAINING]
        assert len(draining) <= 1  # a quarter of 4 at a time
        order += [d for d in draining if d not in order]
        for p in h.procs:  # the batch exits (its worker finished its job)
            if p.terminated and p.code is None:
                p.code = 0
    assert set(order) == old and order[-1] == busy  # idle ones first, the busy one last
    assert len(h.workers()) == 4 and {w.version for w in h.workers()} == {2}
    assert h.phases() == ["starting"] * 4  # started as the old ones left (no ping here)


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


# --- a shared backend (Ray's shape): one controller under the store's lock, adoption ---


@dataclass
class FakeSlot:
    pid: int | None = field(default_factory=lambda: next(_pids))
    node: str = "node-a"
    address: str = "127.0.0.1"
    gpus: tuple[int, ...] = (0,)
    waiting: str | None = None
    note: str | None = None
    log: str | None = None
    code: int | None = None
    terminated: bool = False
    released: bool = False
    restore_s: float | None = None

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.terminated = True

    def kill(self) -> None:
        self.code = -9

    def last_lines(self, n: int) -> list[str]:
        return []

    def release(self) -> None:
        self.released = True


@dataclass
class SharedBackend:
    """Workers that outlive their controller, placed only where `capacity` allows."""

    name: str = "fake-cluster"
    shared: bool = True
    capacity: int = 10
    placed: list[tuple[Placement, FakeSlot]] = field(default_factory=list)
    running: list[Adopted] = field(default_factory=list)

    async def refresh(self, slots) -> None:
        return None

    def inventory(self) -> Inventory | None:
        return TWO_GPUS

    def engine(self) -> str | None:
        return None

    def snapshots(self, live) -> None:
        return None

    def place(self, p: Placement) -> FakeSlot:
        live = sum(1 for _, s in self.placed if s.code is None)
        slot = FakeSlot(waiting=None if live < self.capacity else "no node has 1 GPU free")
        self.placed.append((p, slot))
        return slot

    async def adopt(self) -> list[Adopted]:
        return list(self.running)

    async def close(self) -> None:
        return None


@dataclass
class LockedView(FakeView):
    holder: str | None = None

    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        assert name == "fleet"
        if self.holder in (None, owner):
            self.holder = owner
            return True
        return False


def _controller(view: FakeView, backend: SharedBackend, clock: ManualClock) -> Supervisor:
    return Supervisor(view, FleetSettings(), clock, backend)


async def test_a_shared_fleet_is_driven_only_by_the_lock_holder():
    clock, view, backend = ManualClock(), LockedView(), SharedBackend()
    view.specs["ep1"] = custom(workers_min=2, workers_max=2)
    first, second = _controller(view, backend, clock), _controller(view, backend, clock)
    await first.tick()
    assert first.active and len(backend.placed) == 2
    await second.tick()  # stands by: starts nothing, reports no workers
    assert not second.active and len(backend.placed) == 2


async def test_a_new_controller_adopts_running_workers_and_starts_no_duplicates():
    clock, view, backend = ManualClock(), LockedView(), SharedBackend()
    view.specs["ep1"] = custom(workers_min=2, workers_max=2)
    slots = [FakeSlot(), FakeSlot(gpus=(1,))]
    backend.running = [
        Adopted("ep1", f"ep1-w{i}", i, clock.now() - 10, False, s) for i, s in enumerate(slots)
    ]
    sup = _controller(view, backend, clock)
    view.seen["ep1"] = [WorkerInfo("ep1", f"ep1-w{i}", clock.now()) for i in range(2)]
    await sup.tick()
    assert backend.placed == []  # the two adopted ones meet workersMin
    assert sorted((w.id, w.phase.value) for w in view.published["ep1"]) == [
        ("ep1-w0", "ready"),
        ("ep1-w1", "ready"),
    ]
    # their start was not seen here: no cold start (the metrics skip them)
    assert all(w.adopted for w in view.published["ep1"])
    # a crash of an adopted worker is replaced in its own slot
    slots[0].code = -9
    clock.advance(2)
    await sup.tick()
    clock.advance(2)
    await sup.tick()
    (p, _) = backend.placed[-1]
    assert (p.worker_id, p.slot) == ("ep1-w0", 0) and slots[0].released
    # ... and that start is this controller's own: a cold start again
    adopted = {w.id: w.adopted for w in view.published["ep1"]}
    assert adopted == {"ep1-w0": False, "ep1-w1": True}


async def test_a_worker_the_cluster_cannot_place_yet_is_throttled_with_the_reason():
    clock, view, backend = ManualClock(), LockedView(), SharedBackend(capacity=1)
    view.specs["ep1"] = custom(workers_min=2, workers_max=2)
    sup = _controller(view, backend, clock)
    await sup.tick()
    await sup.tick()
    phases = sorted((w.phase.value, w.reason) for w in view.published["ep1"])
    assert phases == [("starting", None), ("throttled", "no node has 1 GPU free")]
    assert sorted(p.slot for p, _ in backend.placed) == [0, 1]  # slots name the actors
    backend.placed[1][1].waiting = None  # the cluster placed it
    await sup.tick()
    assert [w.phase.value for w in view.published["ep1"]] == ["starting", "starting"]


async def test_losing_the_lock_or_stopping_leaves_shared_workers_running():
    clock, view, backend = ManualClock(), LockedView(), SharedBackend()
    view.specs["ep1"] = custom(workers_min=1, workers_max=1)
    sup = _controller(view, backend, clock)
    await sup.tick()
    ((_, slot),) = backend.placed
    view.holder = "someone else"  # the lease lapsed and another gateway took it
    await sup.tick()
    assert not sup.active and view.published == {} and not slot.terminated
    view.holder = None
    await sup.tick()  # holds it again: adopts what runs (the fake cluster lists nothing)
    sup.begin_stop()
    await sup.stop()
    assert not slot.terminated and not slot.released


# --- issue 17: what one endpoint's settings can do to the machine ------------------------


async def test_a_pass_starts_a_bounded_number_of_workers(tmp_path):
    """workersMin 10: four per pass (starts_per_tick), each in its own slot."""
    h = Harness(tmp_path, CPU, cpu_workers=100, starts_per_tick=4)
    h.view.specs["ep1"] = custom(workers_min=10, workers_max=10)
    started = []
    for _ in range(3):
        await h.tick(0.5)
        started.append(len(h.procs))
    assert started == [4, 8, 10]
    slots = sorted(p.env["RUNPOD_POD_ID"] for p in h.procs)
    assert len(set(slots)) == 10
    assert sorted(w.slot_index for w in h.sup._pools["ep1"].workers.values()) == list(range(10))


async def test_a_burst_of_jobs_starts_workers_a_few_at_a_time(tmp_path):
    h = Harness(tmp_path, CPU, cpu_workers=100, starts_per_tick=4)
    h.view.specs["ep1"] = custom(workers_max=40, scaler_type="REQUEST_COUNT", scaler_value=1)
    h.view.queues["ep1"] = QueueStats(queued=40)
    await h.tick()
    assert len(h.procs) == 4
    await h.tick(0.5)
    assert len(h.procs) == 8


async def test_endpoints_take_turns_while_starts_run_out(tmp_path):
    h = Harness(tmp_path, CPU, cpu_workers=100, starts_per_tick=2)
    for ep in ("a", "b"):
        h.view.specs[ep] = custom(workers_min=4, workers_max=4)
    await h.tick()
    await h.tick(0.5)
    by_ep = sorted(p.env["RUNPOD_ENDPOINT_ID"] for p in h.procs)
    assert by_ep == ["a", "a", "b", "b"]  # b was not starved by a


async def test_cpu_workers_are_capped_by_what_the_machine_holds(tmp_path):
    h = Harness(tmp_path, CPU, cpu_workers=2)
    h.view.specs["ep1"] = custom(workers_min=3, workers_max=3)
    await h.tick()
    await h.tick(0.5)
    assert len(h.procs) == 2
    assert h.phases() == ["starting", "starting", "throttled"]
    (waiting,) = [w for w in h.workers() if w.phase is Phase.THROTTLED]
    assert "at most 2 CPU workers" in (waiting.reason or "")
    h.procs[0].code = 0  # one ends (it had never been seen: a crash, restarted later)
    await h.tick(0.5)
    await h.tick(0.5)
    assert len(h.alive()) == 2  # the freed room went to the waiting one, never a third


async def test_a_value_that_cannot_start_never_stops_the_other_endpoints(tmp_path):
    """A NUL stored before the check existed: Popen refuses it (ValueError). That worker
    backs off with the reason; the other endpoints are scaled as usual."""
    h = Harness(tmp_path, CPU)
    bad = EndpointSpec(name="bad", template_id="sd15", model="auto\x00", workers_min=1)
    h.view.specs["bad"] = bad
    h.view.specs["good"] = custom(workers_min=1)
    await h.tick()
    (worker,) = h.workers("bad")
    assert worker.phase is Phase.BACKOFF and "embedded null byte" in (worker.reason or "")
    assert h.phases("good") == ["starting"]
    assert [p.env["RUNPOD_ENDPOINT_ID"] for p in h.procs] == ["good"]


async def test_one_endpoint_whose_pass_fails_is_skipped(tmp_path, monkeypatch):
    h = Harness(tmp_path, CPU)
    h.view.specs["broken"] = custom(workers_min=1)
    h.view.specs["fine"] = custom(workers_min=1)
    real_queue = h.view.queue

    async def queue(endpoint_id: str) -> QueueStats:
        if endpoint_id == "broken":
            raise RuntimeError("a record this version cannot read")
        return await real_queue(endpoint_id)

    monkeypatch.setattr(h.view, "queue", queue)
    for _ in range(3):
        await h.tick(0.5)
    assert h.phases("fine") == ["starting"]
